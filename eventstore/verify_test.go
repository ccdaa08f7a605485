package eventstore_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// appendN appends n events to st in appends of perAppend events each.
func appendN(t *testing.T, s *eventstore.Store, tenant uuid.UUID, st eventlog.StreamID, n, perAppend int) {
	t.Helper()
	for v := 0; v < n; v += perAppend {
		var evs []eventstore.NewEvent
		for i := v; i < min(n, v+perAppend); i++ {
			evs = append(evs, eventstore.NewEvent{Type: "vm_renamed", Data: map[string]any{"name": fmt.Sprintf("vm-%d", i+1), "n": i}})
		}
		if _, err := s.Append(context.Background(), eventstore.Append{Stream: st, TenantID: tenant,
			Expected: eventstore.Exactly(int64(v)), ActorID: uuid.New(), Events: evs,
			Metadata: eventlog.Metadata{RequestID: "r", ClientIP: "192.0.2.1"}}); err != nil {
			t.Fatalf("append to %s: %v", st, err)
		}
	}
}

// withoutInsertOnly runs fn as the superuser with the insert-only trigger
// off, as an attacker with database owner rights would.
func withoutInsertOnly(t *testing.T, db *pgtest.DB, fn func(pgx.Tx) error) {
	t.Helper()
	ctx := context.Background()
	conn := db.AdminConn(t)
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `ALTER TABLE events DISABLE TRIGGER events_no_update_delete`); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `ALTER TABLE events ENABLE TRIGGER events_no_update_delete`)
		return err
	})
	if err != nil {
		t.Fatalf("tamper: %v", err)
	}
}

// tamper runs one statement that must touch exactly one row, as an
// attacker with database owner rights would.
func tamper(t *testing.T, db *pgtest.DB, sql string, args ...any) {
	t.Helper()
	withoutInsertOnly(t, db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(context.Background(), sql, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("tampered with %d rows, want 1", tag.RowsAffected())
		}
		return nil
	})
}

func verify(t *testing.T, s *eventstore.Store, f eventstore.VerifyFilter) eventstore.VerifyReport {
	t.Helper()
	rep, err := s.VerifyChains(context.Background(), f)
	if err != nil {
		t.Fatalf("verify %+v: %v", f, err)
	}
	return rep
}

func position(t *testing.T, s *eventstore.Store, tenant uuid.UUID, st eventlog.StreamID, version int64) int64 {
	t.Helper()
	evs, err := s.ReadStream(context.Background(), tenant, st, version, 1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("read %s@%d: %v %v", st, version, evs, err)
	}
	return evs[0].Position.GlobalPosition
}

func TestHashChainsVerifyAndRevealTampering(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	tenantA, tenantB := uuid.New(), uuid.New()
	edited, rehashed, holed, cut, clean := stream(t), stream(t), stream(t), stream(t), stream(t)
	// Multi-event appends chain inside one statement; single ones across.
	appendN(t, s, tenantA, edited, 4, 4)
	appendN(t, s, tenantA, rehashed, 4, 1)
	appendN(t, s, tenantB, holed, 5, 2)
	appendN(t, s, tenantB, cut, 3, 3)
	appendN(t, s, tenantB, clean, 3, 1)

	rep := verify(t, s, eventstore.VerifyFilter{})
	if !rep.OK() || rep.StreamsChecked != 5 || rep.EventsChecked != 19 {
		t.Fatalf("untouched log: %+v", rep)
	}
	if rep := verify(t, s, eventstore.VerifyFilter{TenantID: tenantA}); !rep.OK() || rep.StreamsChecked != 2 || rep.EventsChecked != 8 {
		t.Fatalf("tenant A: %+v", rep)
	}
	if rep := verify(t, s, eventstore.VerifyFilter{Stream: holed}); !rep.OK() || rep.StreamsChecked != 1 || rep.EventsChecked != 5 {
		t.Fatalf("one stream: %+v", rep)
	}
	// Another tenant's stream is invisible in a tenant's scope.
	if rep := verify(t, s, eventstore.VerifyFilter{TenantID: tenantA, Stream: holed}); !rep.OK() || rep.StreamsChecked != 0 {
		t.Fatalf("tenant A, tenant B's stream: %+v", rep)
	}

	// Every link is prev_hash = the previous event's hash, and a stream starts
	// from 32 zero bytes.
	admin := db.AdminConn(t)
	var badLinks int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM events e LEFT JOIN events p
		ON p.stream_id = e.stream_id AND p.stream_version = e.stream_version - 1
		WHERE e.prev_hash <> coalesce(p.hash, decode(repeat('00', 32), 'hex')) OR length(e.hash) <> 32`).Scan(&badLinks); err != nil {
		t.Fatal(err)
	}
	if badLinks != 0 {
		t.Fatalf("%d events are not linked to their predecessor", badLinks)
	}

	posEdited := position(t, s, tenantA, edited, 2)
	posRehashed := position(t, s, tenantA, rehashed, 3)
	posHoled := position(t, s, tenantB, holed, 4)

	// 1. Data changed in place: that event's own hash no longer matches.
	tamper(t, db, `UPDATE events SET data = '{"name":"evil"}' WHERE stream_id = $1 AND stream_version = 2`, edited.String())
	// 2. Data changed and the hash recomputed: the event is self-consistent,
	// but the next event's link no longer names it.
	tamper(t, db, `UPDATE events SET data = '{"name":"evil"}',
		hash = sha256(prev_hash || event_canonical(event_id, stream_id, stream_version, event_type, schema_version,
			tenant_id, actor_id, correlation_id, causation_id, '{"name":"evil"}'::jsonb, metadata, recorded_at))
		WHERE stream_id = $1 AND stream_version = 2`, rehashed.String())
	// 3. An event deleted from the middle, 4. and from the end.
	tamper(t, db, `DELETE FROM events WHERE stream_id = $1 AND stream_version = 3`, holed.String())
	tamper(t, db, `DELETE FROM events WHERE stream_id = $1 AND stream_version = 3`, cut.String())

	rep = verify(t, s, eventstore.VerifyFilter{})
	if rep.OK() || rep.StreamsChecked != 5 || rep.EventsChecked != 17 {
		t.Fatalf("tampered log: %+v", rep)
	}
	want := []struct {
		stream   eventlog.StreamID
		version  int64
		position int64
		reason   eventstore.BreakReason
	}{
		{edited, 2, posEdited, eventstore.ContentChanged},
		{rehashed, 3, posRehashed, eventstore.LinkBroken},
		{holed, 3, posHoled, eventstore.Gap},
		{cut, 3, 0, eventstore.Gap},
	}
	if len(rep.Broken) != len(want) {
		t.Fatalf("broken links %+v, want %d", rep.Broken, len(want))
	}
	for i, w := range want {
		b := rep.Broken[i]
		if b.Stream != w.stream.String() || b.Version != w.version || b.Position != w.position || b.Reason != w.reason {
			t.Errorf("break %d: got %s@%d pos %d %s, want %s@%d pos %d %s", i,
				b.Stream, b.Version, b.Position, b.Reason, w.stream, w.version, w.position, w.reason)
		}
		if w.reason != eventstore.Gap && (len(b.Expected) != 32 || len(b.Stored) != 32 || bytes.Equal(b.Expected, b.Stored)) {
			t.Errorf("break %d: expected %x, stored %x", i, b.Expected, b.Stored)
		}
	}
	if rep := verify(t, s, eventstore.VerifyFilter{TenantID: tenantB, Stream: clean}); !rep.OK() {
		t.Fatalf("the untouched stream: %+v", rep)
	}
	if rep := verify(t, s, eventstore.VerifyFilter{TenantID: tenantA}); len(rep.Broken) != 2 || rep.Broken[0].Stream != edited.String() {
		t.Fatalf("tenant A after tampering: %+v", rep)
	}

	// A stream whose last event is gone refuses new events rather than chain past the hole.
	if _, err := s.Append(ctx, eventstore.Append{Stream: cut, TenantID: tenantB, Expected: eventstore.Any(),
		Events: oneEvent("vm_renamed", nil)}); err == nil {
		t.Fatal("append after a missing predecessor succeeded")
	}
}
