package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DuplicateWindow is how long JetStream remembers message ids.
const DuplicateWindow = 2 * time.Minute

// EnsureStream creates or updates the ACCOUNTDB_AGENT stream; both the core
// and the agent call it, whichever starts first.
func EnsureStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "AccountDB agent results, observations and inventory",
		Subjects:    []string{"accountdb.agent.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      7 * 24 * time.Hour,
		Duplicates:  DuplicateWindow,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", StreamName, err)
	}
	return s, nil
}

// ResultMsg builds the message of a result.
func ResultMsg(r Result) (*nats.Msg, error) {
	return newMsg(ResultSubjectPrefix+r.TenantID.String(), KindResult, "result-"+r.RequestEventID.String(), r)
}

// ObservationMsg builds the message of an observation.
func ObservationMsg(o Observation) (*nats.Msg, error) {
	return newMsg(ObservationSubjectPrefix+o.ClusterID.String(), KindObservation, "", o)
}

// InventoryMsg builds the message of an inventory.
func InventoryMsg(i Inventory) (*nats.Msg, error) {
	return newMsg(InventorySubjectPrefix+i.ClusterID.String(), KindInventory, "", i)
}

func newMsg(subject, kind, id string, v any) (*nats.Msg, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(HeaderKind, kind)
	if id == "" {
		id = kind + "-" + uuid.Must(uuid.NewV7()).String()
	}
	m.Header.Set(nats.MsgIdHdr, id)
	return m, nil
}

// ErrUnknownKind is a message whose kind header is missing or unknown.
var ErrUnknownKind = errors.New("protocol: unknown agent message kind")

// Decode reads an agent message into a *Result, *Observation or *Inventory.
func Decode(h nats.Header, data []byte) (any, error) {
	var v any
	switch h.Get(HeaderKind) {
	case KindResult:
		v = &Result{}
	case KindObservation:
		v = &Observation{}
	case KindInventory:
		v = &Inventory{}
	default:
		return nil, ErrUnknownKind
	}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("protocol: decode %s: %w", h.Get(HeaderKind), err)
	}
	return v, nil
}
