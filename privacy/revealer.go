package privacy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
)

// Revealer gives readers the plaintext of events' personal values while
// their keys exist, and domain.Erased once they are destroyed. Every reader
// of events goes through one: the event store's reads (eventstore.WithRevealer:
// commands, history, audit, export, replay, rebuilds) and the consumers of
// the bus (projectors, the live feed, webhooks). Values that are not
// ciphertext (events recorded before encryption) are left as they are.
type Revealer struct{ keys Keys }

// NewRevealer returns a revealer whose keys come from keys.
func NewRevealer(keys Keys) *Revealer { return &Revealer{keys: keys} }

// Reveal reveals evs in place. Only a failure to read keys is an error; a
// value that cannot be opened (its key destroyed, or tampered with) reads
// domain.Erased.
func (r *Revealer) Reveal(ctx context.Context, evs []eventlog.Event) error {
	if r == nil {
		return nil
	}
	for i := range evs {
		if err := r.RevealEvent(ctx, &evs[i]); err != nil {
			return err
		}
	}
	return nil
}

var cipherMarker = []byte(cipherPrefix)

var erasedEventType = domain.UserErased{}.EventType()

// forgetter is a key store that can drop a subject's cached keys and say
// when it last did (PGKeys).
type forgetter interface {
	Forget(tenant, subject uuid.UUID)
	Generation() uint64
}

// Generation changes whenever this process learns that keys were destroyed
// (an erasure here, a user_erased passing through, retention): callers that
// cache revealed events (the live feed, webhooks) drop what they revealed
// at another generation.
func (r *Revealer) Generation() uint64 {
	if f, ok := r.keys.(forgetter); ok {
		return f.Generation()
	}
	return 0
}

// RevealEvent reveals one event in place. A user_erased passing through
// makes this process forget the subject's cached keys at once, whichever
// process erased them.
func (r *Revealer) RevealEvent(ctx context.Context, e *eventlog.Event) error {
	if r == nil {
		return nil
	}
	if e.Type == erasedEventType {
		if f, ok := r.keys.(forgetter); ok {
			f.Forget(e.TenantID, e.Stream.ID)
		}
	}
	var err error
	if e.Metadata.ClientIP, err = r.open(ctx, e.TenantID, fieldClientIP, e.Metadata.ClientIP); err != nil {
		return err
	}
	if e.Metadata.UserAgent, err = r.open(ctx, e.TenantID, fieldUserAgent, e.Metadata.UserAgent); err != nil {
		return err
	}
	p, ok := domain.PersonalFieldsOf(e.Type)
	if !ok || !bytes.Contains(e.Data, cipherMarker) {
		return nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(e.Data, &obj) != nil {
		return nil // not an object: nothing of ours in it
	}
	for _, f := range p.Fields {
		var v string
		if raw, ok := obj[f]; !ok || json.Unmarshal(raw, &v) != nil || !IsCiphertext(v) {
			continue
		}
		plain, err := r.open(ctx, e.TenantID, f, v)
		if err != nil {
			return err
		}
		if obj[f], err = json.Marshal(plain); err != nil {
			return err
		}
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	e.Data = data
	return nil
}

func (r *Revealer) open(ctx context.Context, tenant uuid.UUID, field, v string) (string, error) {
	if !IsCiphertext(v) {
		return v, nil
	}
	ref, sealed, err := parseCiphertext(v)
	if err != nil {
		return domain.Erased, nil
	}
	key, err := r.keys.Key(ctx, tenant, ref, false)
	if errors.Is(err, ErrNoKey) || errors.Is(err, ErrErased) {
		return domain.Erased, nil
	}
	if err != nil {
		return "", err
	}
	plain, err := open(key, tenant, ref, field, sealed)
	if err != nil {
		return domain.Erased, nil
	}
	return plain, nil
}
