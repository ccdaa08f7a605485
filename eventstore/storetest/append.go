package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
)

// AppendAndReadStream: appends land at the versions expected, and reads give
// the envelope back; another tenant reads nothing of the stream.
func AppendAndReadStream(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t)
	tenant, actor, corr := uuid.New(), uuid.New(), uuid.New()
	st := stream(t)

	res, err := s.Append(ctx, eventstore.Append{
		Stream: st, TenantID: tenant, Expected: eventstore.NoStream(), ActorID: actor, CorrelationID: corr,
		Metadata: eventlog.Metadata{RequestID: "req-1", ClientIP: "192.0.2.7", UserAgent: "test"},
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

// ExpectedVersionConflicts: every form of expected version is enforced, with
// the conflict's detail; another tenant cannot append to the stream.
func ExpectedVersionConflicts(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t)
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

// BadInputIsRejected: malformed appends fail with the error that names the
// problem, and leave the stream they named untouched. (eventstore also
// checks, in SQL, that no row at all was written.)
func BadInputIsRejected(t *testing.T, s Store) {
	ctx := context.Background()
	tenant := uuid.New()
	good := stream(t)
	big := strings.Repeat("x", eventstore.MaxEventDataBytes)
	cases := []struct {
		name string
		a    eventstore.Append
		want error
	}{
		{"empty event list", eventstore.Append{Stream: good, TenantID: tenant, Expected: eventstore.Any()}, eventstore.ErrNoEvents},
		{"invalid stream type", eventstore.Append{Stream: eventlog.StreamID{Type: "VM; drop", ID: uuid.New()}, TenantID: tenant, Expected: eventstore.Any(), Events: oneEvent("x_happened", nil)}, eventlog.ErrInvalidStreamID},
		{"nil stream id", eventstore.Append{Stream: eventlog.StreamID{Type: "vm"}, TenantID: tenant, Expected: eventstore.Any(), Events: oneEvent("x_happened", nil)}, eventlog.ErrInvalidStreamID},
		{"unset expected version", eventstore.Append{Stream: good, TenantID: tenant, Events: oneEvent("x_happened", nil)}, eventstore.ErrInvalidExpectedVersion},
		{"oversized event", eventstore.Append{Stream: good, TenantID: tenant, Expected: eventstore.Any(), Events: []eventstore.NewEvent{{Type: "ok_happened"}, {Type: "x_happened", Data: map[string]string{"blob": big}}}}, eventstore.ErrEventTooLarge},
		{"too many events", eventstore.Append{Stream: good, TenantID: tenant, Expected: eventstore.Any(), Events: ticks(eventstore.MaxEventsPerAppend + 1)}, eventstore.ErrInvalidEvent},
		{"bad event type", eventstore.Append{Stream: good, TenantID: tenant, Expected: eventstore.Any(), Events: oneEvent("has.dots", nil)}, eventstore.ErrInvalidEvent},
		{"invalid json", eventstore.Append{Stream: good, TenantID: tenant, Expected: eventstore.Any(), Events: []eventstore.NewEvent{{Type: "x_happened", Data: []byte("{nope")}}}, eventstore.ErrInvalidEvent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s.Append(ctx, c.a); !errors.Is(err, c.want) {
				t.Fatalf("want %v, got %v", c.want, err)
			}
		})
	}
	for _, bad := range []string{"", "latest", "-1", "1.5", "0x10"} {
		if _, err := eventstore.ParseExpectedVersion(bad); !errors.Is(err, eventstore.ErrInvalidExpectedVersion) {
			t.Errorf("ParseExpectedVersion(%q): want ErrInvalidExpectedVersion, got %v", bad, err)
		}
	}
	if v, err := s.StreamVersion(ctx, tenant, good); err != nil || v != 0 {
		t.Fatalf("rejected input wrote to the stream: version %d (%v)", v, err)
	}
}

// DuplicateEventIDIsAnError: an event id is unique across the log, and an
// append with a duplicate writes nothing.
func DuplicateEventIDIsAnError(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t)
	tenant, id := uuid.New(), uuid.Must(uuid.NewV7())
	if _, err := s.Append(ctx, eventstore.Append{Stream: stream(t), TenantID: tenant, Expected: eventstore.Any(),
		Events: []eventstore.NewEvent{{ID: id, Type: "x_happened"}}}); err != nil {
		t.Fatal(err)
	}
	other := stream(t)
	_, err := s.Append(ctx, eventstore.Append{Stream: other, TenantID: tenant, Expected: eventstore.Any(),
		Events: []eventstore.NewEvent{{Type: "y_happened"}, {ID: id, Type: "x_happened"}}})
	if !errors.Is(err, eventstore.ErrDuplicateEvent) {
		t.Fatalf("want ErrDuplicateEvent, got %v", err)
	}
	if v, _ := s.StreamVersion(ctx, tenant, other); v != 0 {
		t.Fatalf("half-written append: stream at version %d", v)
	}
	// Within one append, too.
	dup := uuid.Must(uuid.NewV7())
	_, err = s.Append(ctx, eventstore.Append{Stream: stream(t), TenantID: tenant, Expected: eventstore.Any(),
		Events: []eventstore.NewEvent{{ID: dup, Type: "x_happened"}, {ID: dup, Type: "x_happened"}}})
	if !errors.Is(err, eventstore.ErrDuplicateEvent) {
		t.Fatalf("duplicate inside one append: want ErrDuplicateEvent, got %v", err)
	}
}

// CommandIdempotency: a repeated command id returns the first result and
// writes nothing, whatever its expected version; of concurrent repeats
// exactly one writes.
func CommandIdempotency(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t)
	tenant, cmd := uuid.New(), uuid.New()
	st := stream(t)
	a := eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(), CommandID: cmd,
		Events: []eventstore.NewEvent{{Type: "a_happened"}, {Type: "b_happened"}}}
	first, err := s.Append(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	// The repeat would now conflict (the stream exists) and, with Any, would
	// append again: both must return the first result and write nothing.
	for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream(), eventstore.Any()} {
		a.Expected = exp
		again, err := s.Append(ctx, a)
		if err != nil {
			t.Fatalf("repeat with %s: %v", exp, err)
		}
		if !again.Replayed || again.FirstVersion != first.FirstVersion || again.LastVersion != first.LastVersion ||
			again.LastPosition != first.LastPosition || again.Stream != st {
			t.Fatalf("repeat with %s: %+v, first %+v", exp, again, first)
		}
	}
	evs, _ := s.ReadStream(ctx, tenant, st, 1, 0)
	if len(evs) != 2 {
		t.Fatalf("repeated command wrote events: %d in stream", len(evs))
	}
	// Concurrent repeats of one command: exactly one writes.
	cmd2 := uuid.New()
	st2 := stream(t)
	var wg sync.WaitGroup
	var replayed atomic.Int32
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Append(ctx, eventstore.Append{Stream: st2, TenantID: tenant, Expected: eventstore.Any(), CommandID: cmd2,
				Events: oneEvent("c_happened", nil)})
			if err != nil {
				t.Errorf("concurrent repeat: %v", err)
				return
			}
			if r.Replayed {
				replayed.Add(1)
			}
		}()
	}
	wg.Wait()
	if v, _ := s.StreamVersion(ctx, tenant, st2); v != 1 || replayed.Load() != 7 {
		t.Fatalf("concurrent repeats: stream version %d, %d replayed; want 1 and 7", v, replayed.Load())
	}
}

// IdempotencyKeyWithDifferentRequestIsRejected: the same command id with
// another request hash is ErrIdempotencyMismatch, not a replay.
func IdempotencyKeyWithDifferentRequestIsRejected(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t)
	tenant, cmd := uuid.New(), uuid.New()
	a := eventstore.Append{Stream: stream(t), TenantID: tenant, Expected: eventstore.NoStream(), CommandID: cmd,
		RequestHash: []byte("body-1"), Events: oneEvent("x_happened", nil)}
	if _, err := s.Append(ctx, a); err != nil {
		t.Fatal(err)
	}
	same, err := s.Append(ctx, a)
	if err != nil || !same.Replayed {
		t.Fatalf("same request: %+v %v", same, err)
	}
	a.RequestHash = []byte("body-2")
	if _, err := s.Append(ctx, a); !errors.Is(err, eventstore.ErrIdempotencyMismatch) {
		t.Fatalf("different request under the same command id: want ErrIdempotencyMismatch, got %v", err)
	}
}

// RecordedCommand finds a command's first result by its id, checks the
// request hash, and knows nothing of ids never appended.
func RecordedCommand(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t)
	tenant, cmd := uuid.New(), uuid.New()
	st := stream(t)
	first, err := s.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(), CommandID: cmd,
		RequestHash: []byte("body-1"), Events: ticks(3)})
	if err != nil {
		t.Fatal(err)
	}
	for _, hash := range [][]byte{[]byte("body-1"), nil} {
		got, found, err := s.RecordedCommand(ctx, cmd, hash)
		if err != nil || !found || !got.Replayed || got.Stream != st || got.FirstVersion != 1 || got.LastVersion != 3 ||
			got.LastPosition != first.LastPosition {
			t.Fatalf("recorded command (hash %q): %+v %v %v, first %+v", hash, got, found, err, first)
		}
	}
	if _, _, err := s.RecordedCommand(ctx, cmd, []byte("body-2")); !errors.Is(err, eventstore.ErrIdempotencyMismatch) {
		t.Fatalf("another request hash: want ErrIdempotencyMismatch, got %v", err)
	}
	if _, found, err := s.RecordedCommand(ctx, uuid.New(), nil); err != nil || found {
		t.Fatalf("unknown command: found %v (%v)", found, err)
	}
}
