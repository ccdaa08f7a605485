package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
)

// Metadata fields' names in the additional data of their ciphertext.
const (
	fieldClientIP  = "metadata.client_ip"
	fieldUserAgent = "metadata.user_agent"
)

// Sealer encrypts the personal data of an append before it reaches the event
// store: the fields domain.PersonalFieldsOf lists, with their subject's data
// key, and the request metadata (client IP, user agent), with the actor's key
// of the day (uuid.Nil, the tenant's anonymous requests, when there is no
// actor). The store then hashes and keeps only ciphertext.
type Sealer struct {
	keys Keys
	now  func() time.Time
}

// NewSealer returns a sealer whose keys come from keys.
func NewSealer(keys Keys) *Sealer { return &Sealer{keys: keys, now: time.Now} }

// SealAppend replaces a's personal values with their ciphertext. Values are
// sealed once: a value that already is ciphertext is left alone. Personal
// values of a subject already erased are recorded as domain.Erased.
func (s *Sealer) SealAppend(ctx context.Context, a *eventstore.Append) error {
	if s == nil {
		return nil
	}
	md, err := s.sealMetadata(ctx, a.TenantID, a.ActorID, a.Metadata)
	if err != nil {
		return err
	}
	a.Metadata = md
	evs := make([]eventstore.NewEvent, len(a.Events))
	copy(evs, a.Events)
	for i, e := range evs {
		p, ok := domain.PersonalFieldsOf(e.Type)
		if !ok {
			continue
		}
		data, err := asJSON(e.Data)
		if err != nil {
			return fmt.Errorf("seal %s: %w", e.Type, err)
		}
		if evs[i].Data, err = s.sealFields(ctx, a.TenantID, a.Stream.ID, p, data); err != nil {
			return fmt.Errorf("seal %s: %w", e.Type, err)
		}
	}
	a.Events = evs
	return nil
}

func asJSON(v any) (json.RawMessage, error) {
	if raw, ok := v.(json.RawMessage); ok {
		return raw, nil
	}
	return json.Marshal(v)
}

func (s *Sealer) sealMetadata(ctx context.Context, tenant, actor uuid.UUID, md eventlog.Metadata) (eventlog.Metadata, error) {
	ref := KeyRef{Subject: actor, Name: MetadataKey(s.now())}
	var err error
	if md.ClientIP, err = s.sealValue(ctx, tenant, ref, fieldClientIP, md.ClientIP); err != nil {
		return md, err
	}
	md.UserAgent, err = s.sealValue(ctx, tenant, ref, fieldUserAgent, md.UserAgent)
	return md, err
}

func (s *Sealer) sealFields(ctx context.Context, tenant, streamID uuid.UUID, p domain.PersonalFields, data json.RawMessage) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, err
	}
	subject := streamID
	if p.SubjectField != domain.SubjectFromStream {
		var id uuid.UUID
		if raw, ok := obj[p.SubjectField]; ok {
			if err := json.Unmarshal(raw, &id); err != nil {
				return nil, fmt.Errorf("subject field %s: %w", p.SubjectField, err)
			}
		}
		subject = id
	}
	if subject == uuid.Nil {
		return data, nil // nobody's: nothing to erase it with
	}
	ref := KeyRef{Subject: subject, Name: DataKey}
	changed := false
	for _, f := range p.Fields {
		raw, ok := obj[f]
		var v string
		if !ok || json.Unmarshal(raw, &v) != nil {
			continue // absent, or not a string: the table test keeps this from happening
		}
		sealed, err := s.sealValue(ctx, tenant, ref, f, v)
		if err != nil {
			return nil, err
		}
		if obj[f], err = json.Marshal(sealed); err != nil {
			return nil, err
		}
		changed = true
	}
	if !changed {
		return data, nil
	}
	return json.Marshal(obj)
}

func (s *Sealer) sealValue(ctx context.Context, tenant uuid.UUID, ref KeyRef, field, v string) (string, error) {
	if v == "" || IsCiphertext(v) || v == domain.Erased {
		return v, nil
	}
	key, err := s.keys.Key(ctx, tenant, ref, true)
	if errors.Is(err, ErrErased) {
		return domain.Erased, nil
	}
	if err != nil {
		return "", err
	}
	return seal(key, tenant, ref, field, v)
}
