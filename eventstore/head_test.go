package eventstore_test

import (
	"context"
	"testing"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
)

func TestHeadAndEventAt(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if head, at, err := s.Head(ctx); err != nil || head != eventlog.Start || !at.IsZero() {
		t.Fatalf("empty log: head %v at %v err %v, want Start and the zero time", head, at, err)
	}
	if _, _, found, err := s.EventAt(ctx, 1); err != nil || found {
		t.Fatalf("EventAt on an empty log: found %v err %v", found, err)
	}

	if _, err := s.Append(ctx, eventstore.Append{Stream: stream(t), TenantID: uuid.New(),
		Expected: eventstore.NoStream(), Events: oneEvent("vm_created", nil)}); err != nil {
		t.Fatal(err)
	}
	// Nothing else appends to this database: the event is readable at once
	// (transactions of other databases do not hold the watermark back).
	evs, err := s.ReadAll(ctx, eventlog.Start, 0)
	if err != nil || len(evs) != 1 {
		t.Fatalf("read %d events (%v) right after the append, want 1", len(evs), err)
	}
	last := evs[0]
	head, at, err := s.Head(ctx)
	if err != nil || head != last.Position || !at.Equal(last.RecordedAt) {
		t.Fatalf("head %v at %v err %v, want %v at %v", head, at, err, last.Position, last.RecordedAt)
	}
	id, pos, found, err := s.EventAt(ctx, last.Position.GlobalPosition)
	if err != nil || !found || id != last.EventID || pos != last.Position {
		t.Fatalf("EventAt: %s %v found %v err %v, want %s %v", id, pos, found, err, last.EventID, last.Position)
	}
	if _, _, found, err := s.EventAt(ctx, last.Position.GlobalPosition+1); err != nil || found {
		t.Fatalf("EventAt past the head: found %v err %v", found, err)
	}
}
