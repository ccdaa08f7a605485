package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/google/uuid"
)

func newStore(t *testing.T) (*eventstore.Store, *pgtest.DB) {
	t.Helper()
	db := pgtest.New(t)
	return eventstore.New(db.App, nil), db
}

func stream(t testing.TB) eventstore.StreamID {
	t.Helper()
	s, err := eventstore.NewStreamID("vm", uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func oneEvent(typ string, data any) []eventstore.NewEvent {
	return []eventstore.NewEvent{{Type: typ, Data: data}}
}

func TestAppendAndReadStream(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	tenant, actor, corr := uuid.New(), uuid.New(), uuid.New()
	st := stream(t)

	res, err := s.Append(ctx, eventstore.Append{
		Stream: st, TenantID: tenant, Expected: eventstore.NoStream(), ActorID: actor, CorrelationID: corr,
		Metadata: eventstore.Metadata{RequestID: "req-1", ClientIP: "192.0.2.7", UserAgent: "test"},
		Events: []eventstore.NewEvent{
			{Type: "vm_create_requested", Data: map[string]any{"name": "web-1"}},
			{Type: "vm_created", Data: json.RawMessage(`{"vmid":101}`)},
		},
	})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if res.FirstVersion != 1 || res.LastVersion != 2 || res.LastPosition <= 0 || res.Replayed {
		t.Fatalf("unexpected result %+v", res)
	}
	res2, err := s.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.Exactly(2),
		Events: oneEvent("vm_started", nil)})
	if err != nil {
		t.Fatalf("append at exact version: %v", err)
	}
	if res2.FirstVersion != 3 || res2.LastPosition <= res.LastPosition {
		t.Fatalf("second append: %+v", res2)
	}

	evs, err := s.ReadStream(ctx, tenant, st, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Fatalf("want 3 events, got %d", len(evs))
	}
	e := evs[0]
	if e.Stream != st || e.StreamVersion != 1 || e.Type != "vm_create_requested" || e.TenantID != tenant ||
		e.ActorID != actor || e.CorrelationID != corr || e.SchemaVersion != 1 || e.EventID.Version() != 7 ||
		e.Metadata.ClientIP != "192.0.2.7" || e.Metadata.RequestID != "req-1" || e.RecordedAt.IsZero() ||
		e.Position.TransactionID == 0 {
		t.Fatalf("envelope not round-tripped: %+v", e)
	}
	if !strings.Contains(string(e.Data), `"web-1"`) {
		t.Fatalf("data: %s", e.Data)
	}
	if evs[2].Data == nil || string(evs[2].Data) != "{}" {
		t.Fatalf("nil data should be stored as {}: %q", evs[2].Data)
	}
	from3, err := s.ReadStream(ctx, tenant, st, 3, 0)
	if err != nil || len(from3) != 1 || from3[0].Type != "vm_started" {
		t.Fatalf("read from version 3: %v %+v", err, from3)
	}
	// Another tenant sees nothing of the stream.
	other, err := s.ReadStream(ctx, uuid.New(), st, 1, 0)
	if err != nil || len(other) != 0 {
		t.Fatalf("another tenant read %d events (err %v)", len(other), err)
	}
}

func TestExpectedVersionConflicts(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	tenant := uuid.New()
	st := stream(t)
	if _, err := s.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.StreamExists(),
		Events: oneEvent("x_happened", nil)}); !errors.Is(err, eventstore.ErrVersionConflict) {
		t.Fatalf("exists on a missing stream: want conflict, got %v", err)
	}
	if _, err := s.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(),
		Events: oneEvent("x_happened", nil)}); err != nil {
		t.Fatal(err)
	}
	cases := []eventstore.ExpectedVersion{eventstore.NoStream(), eventstore.Exactly(2), eventstore.Exactly(7)}
	for _, exp := range cases {
		_, err := s.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: exp, Events: oneEvent("x_happened", nil)})
		var ce *eventstore.ConflictError
		if !errors.As(err, &ce) || !errors.Is(err, eventstore.ErrVersionConflict) {
			t.Fatalf("expected %s: want *ConflictError, got %v", exp, err)
		}
		if ce.Actual != 1 || ce.Expected != exp || ce.Stream != st {
			t.Fatalf("conflict detail: %+v", ce)
		}
	}
	if _, err := s.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.Any(), Events: oneEvent("x_happened", nil)}); err != nil {
		t.Fatalf("any: %v", err)
	}
	if v, _ := s.StreamVersion(ctx, tenant, st); v != 2 {
		t.Fatalf("version after conflicts: want 2, got %d", v)
	}
	// Another tenant cannot append to the stream, whatever it expects.
	for _, exp := range []eventstore.ExpectedVersion{eventstore.Any(), eventstore.NoStream(), eventstore.Exactly(2), eventstore.StreamExists()} {
		_, err := s.Append(ctx, eventstore.Append{Stream: st, TenantID: uuid.New(), Expected: exp, Events: oneEvent("x_happened", nil)})
		if !errors.Is(err, eventstore.ErrTenantMismatch) {
			t.Fatalf("foreign tenant with %s: want ErrTenantMismatch, got %v", exp, err)
		}
	}
}
