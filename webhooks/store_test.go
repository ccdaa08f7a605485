package webhooks

import (
	"context"
	"testing"
	"time"

	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/google/uuid"
)

// TestRecordsListedAndPruned: records of two tenants written in one batch
// are each in their tenant only; pruning takes only old ones of its tenant.
func TestRecordsListedAndPruned(t *testing.T) {
	ctx := context.Background()
	s := NewStore(pgtest.New(t).App)
	a, b, hook := uuid.New(), uuid.New(), uuid.New()
	now := time.Now().UTC().Truncate(time.Millisecond)
	var ds []Delivery
	for i, at := range []time.Time{now.Add(-40 * 24 * time.Hour), now.Add(-time.Hour), now} {
		for _, tenant := range []uuid.UUID{a, b} {
			ds = append(ds, Delivery{ID: uuid.Must(uuid.NewV7()), Tenant: tenant, Webhook: hook, MessageID: "msg_x", EventTenant: tenant,
				EventPosition: int64(i + 1), EventType: "user_created", Attempt: 1, Succeeded: i > 0, ResponseCode: 200 + i, At: at})
		}
	}
	if err := s.Record(ctx, ds); err != nil {
		t.Fatal(err)
	}
	listed, err := s.ListDeliveries(ctx, a, hook, uuid.Nil, 10)
	if err != nil || len(listed) != 3 {
		t.Fatalf("tenant a's records: %d, %v", len(listed), err)
	}
	for _, d := range listed {
		if d.Tenant != a || d.EventTenant != a {
			t.Fatalf("another tenant's record listed: %+v", d)
		}
	}
	if first, n, err := s.Failures(ctx, a, hook, 1, time.Time{}); err != nil || n != 1 || !first.Equal(ds[0].At) {
		t.Fatalf("failures: first %v, %d, %v", first, n, err)
	}
	if _, n, err := s.Failures(ctx, a, hook, 2, time.Time{}); err != nil || n != 0 {
		t.Fatalf("failures of a delivered event: %d, %v", n, err)
	}
	if n, err := s.Prune(ctx, a, now.Add(-DeliveryRetention), 100); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want tenant a's one old record", n, err)
	}
	if left, _ := s.ListDeliveries(ctx, b, hook, uuid.Nil, 10); len(left) != 3 {
		t.Fatalf("tenant b kept %d records, want 3", len(left))
	}
	if tenants, err := s.DeliveryTenants(ctx); err != nil || len(tenants) != 2 {
		t.Fatalf("delivery tenants %v %v", tenants, err)
	}
}

// TestCursorsOnlyMoveForward: a cursor never goes back within a
// generation (a replica that dispatched briefly after a fail-over saves
// less), a later generation replaces it, an earlier one never does.
func TestCursorsOnlyMoveForward(t *testing.T) {
	ctx := context.Background()
	s := NewStore(pgtest.New(t).App)
	hook, other := uuid.New(), uuid.New()
	step := func(c cursor, want cursor) {
		t.Helper()
		if err := s.SaveCursors(ctx, []cursor{c}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Cursors(ctx, []uuid.UUID{hook, other})
		if err != nil || got[hook] != want || len(got) != 1 {
			t.Fatalf("after saving %+v: %+v, %v; want %+v", c, got, err, want)
		}
	}
	step(cursor{webhook: hook, seq: 10}, cursor{webhook: hook, seq: 10})
	step(cursor{webhook: hook, seq: 7}, cursor{webhook: hook, seq: 10})
	step(cursor{webhook: hook, generation: 1, seq: 3}, cursor{webhook: hook, generation: 1, seq: 3})
	step(cursor{webhook: hook, seq: 50}, cursor{webhook: hook, generation: 1, seq: 3})
}
