package eventstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
)

// TestAuditEachHoldsNoConnectionWhileTheCallerWaits: a caller that stalls
// in the middle of a long AuditEach (an export whose client stopped
// reading) holds no pooled connection, and the events it gets are those of
// the snapshot the export began with, in order, without gap, whatever is
// appended meanwhile.
func TestAuditEachHoldsNoConnectionWhileTheCallerWaits(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tenant := uuid.New()
	st := stream(t)
	const n = 3500 // several chunks
	appendN(t, s, tenant, st, n, 500)

	var got []int64
	stalled := false
	errStop := errors.New("stop")
	err := s.AuditEach(ctx, tenantdb.Tenant(tenant), eventstore.AuditFilter{TenantID: tenant}, func(e eventlog.Event) error {
		got = append(got, e.StreamVersion)
		if stalled {
			return nil
		}
		stalled = true
		// The reader runs ahead, then waits for this caller outside any
		// transaction: the pool empties.
		deadline := time.Now().Add(10 * time.Second)
		for s.Pool().Stat().AcquiredConns() != 0 {
			if time.Now().After(deadline) {
				return errors.New("AuditEach keeps a pooled connection while its caller waits")
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Appended after the export began: not part of it.
		appendN(t, s, tenant, stream(t), 3, 3)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("AuditEach listed %d events, want the %d of its snapshot", len(got), n)
	}
	for i, v := range got {
		if v != int64(i+1) {
			t.Fatalf("event %d has version %d: out of order or missing", i, v)
		}
	}

	// fn's error stops the reading and is returned.
	calls := 0
	err = s.AuditEach(ctx, tenantdb.Tenant(tenant), eventstore.AuditFilter{TenantID: tenant}, func(eventlog.Event) error {
		calls++
		return errStop
	})
	if !errors.Is(err, errStop) || calls != 1 {
		t.Fatalf("fn failing: err %v after %d calls, want errStop after 1", err, calls)
	}
}
