package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
)

// readAllFrom follows ReadAll from after in pages of limit until it has
// want events. PostgreSQL's ReadAll stays below the log's watermark, which
// an append still committing holds back for a moment, so it keeps asking
// within a deadline.
func readAllFrom(t *testing.T, s Store, after eventlog.Position, limit, want int) []eventlog.Event {
	t.Helper()
	var got []eventlog.Event
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < want {
		page, err := s.ReadAll(context.Background(), after, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > limit {
			t.Fatalf("ReadAll with limit %d returned %d", limit, len(page))
		}
		if len(page) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("ReadAll: %d of %d events", len(got), want)
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		got = append(got, page...)
		after = page[len(page)-1].Position
	}
	return got
}

// ReadAllInLogOrder: ReadAll lists every tenant's events once, in the order
// they were appended (positions increasing, each stream's versions in
// order), page by page from any position.
func ReadAllInLogOrder(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t)
	a, b := uuid.New(), uuid.New()
	sa, sb := stream(t), stream(t)
	type step struct {
		tenant uuid.UUID
		st     eventlog.StreamID
		n      int
	}
	var want []string
	for _, p := range []step{{a, sa, 1}, {b, sb, 2}, {a, sa, 2}, {b, sb, 1}} {
		res, err := s.Append(ctx, eventstore.Append{Stream: p.st, TenantID: p.tenant, Expected: eventstore.Any(), Events: ticks(p.n)})
		if err != nil {
			t.Fatal(err)
		}
		for v := res.FirstVersion; v <= res.LastVersion; v++ {
			want = append(want, fmt.Sprintf("%s@%d", p.st, v))
		}
	}
	for _, limit := range []int{1, 2, 100} {
		got := readAllFrom(t, s, eventlog.Start, limit, len(want))
		var order []string
		var prev eventlog.Position
		for _, e := range got {
			if !prev.Less(e.Position) {
				t.Fatalf("limit %d: positions not increasing: %+v after %+v", limit, e.Position, prev)
			}
			prev = e.Position
			order = append(order, fmt.Sprintf("%s@%d", e.Stream, e.StreamVersion))
		}
		if fmt.Sprint(order) != fmt.Sprint(want) {
			t.Fatalf("limit %d: order %v, want %v", limit, order, want)
		}
		rest, err := s.ReadAll(ctx, got[2].Position, 0)
		if err != nil || len(rest) != len(want)-3 || rest[0].EventID != got[3].EventID {
			t.Fatalf("from the third event: %d events (%v)", len(rest), err)
		}
	}
}

// AuditEachFilters: AuditEach lists one tenant's events in log order, as
// the filter and the scope allow.
func AuditEachFilters(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t)
	a, b, actor := uuid.New(), uuid.New(), uuid.New()
	vm := stream(t)
	user := eventlog.StreamID{Type: "user", ID: uuid.New()}
	appendOne := func(tenant uuid.UUID, st eventlog.StreamID, typ string, by uuid.UUID) {
		t.Helper()
		time.Sleep(time.Millisecond) // a recorded_at of its own, for since and until
		if _, err := s.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.Any(), ActorID: by,
			Events: oneEvent(typ, nil)}); err != nil {
			t.Fatal(err)
		}
	}
	appendOne(a, vm, "vm_started", actor)
	appendOne(a, user, "user_created", uuid.Nil)
	appendOne(b, stream(t), "vm_started", actor)
	appendOne(a, vm, "vm_stopped", uuid.Nil)
	list := func(sc tenantdb.Scope, f eventstore.AuditFilter) string {
		t.Helper()
		var got []string
		if err := s.AuditEach(ctx, sc, f, func(e eventlog.Event) error {
			got = append(got, e.Type)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(got)
	}
	var all []eventlog.Event
	if err := s.AuditEach(ctx, tenantdb.Tenant(a), eventstore.AuditFilter{TenantID: a}, func(e eventlog.Event) error {
		all = append(all, e)
		return nil
	}); err != nil || len(all) != 3 {
		t.Fatalf("tenant a's events: %d (%v)", len(all), err)
	}
	for _, c := range []struct {
		name string
		sc   tenantdb.Scope
		f    eventstore.AuditFilter
		want string
	}{
		{"tenant", tenantdb.Tenant(a), eventstore.AuditFilter{TenantID: a}, "[vm_started user_created vm_stopped]"},
		{"stream", tenantdb.Tenant(a), eventstore.AuditFilter{TenantID: a, Stream: &vm}, "[vm_started vm_stopped]"},
		{"stream type", tenantdb.Tenant(a), eventstore.AuditFilter{TenantID: a, StreamType: "user"}, "[user_created]"},
		{"types", tenantdb.Tenant(a), eventstore.AuditFilter{TenantID: a, Types: []string{"vm_stopped", "user_created"}}, "[user_created vm_stopped]"},
		{"actor", tenantdb.Tenant(a), eventstore.AuditFilter{TenantID: a, ActorID: actor}, "[vm_started]"},
		{"after", tenantdb.Tenant(a), eventstore.AuditFilter{TenantID: a, After: all[0].Position.GlobalPosition}, "[user_created vm_stopped]"},
		{"since", tenantdb.Tenant(a), eventstore.AuditFilter{TenantID: a, Since: all[2].RecordedAt}, "[vm_stopped]"},
		{"until", tenantdb.Tenant(a), eventstore.AuditFilter{TenantID: a, Until: all[0].RecordedAt}, "[vm_started]"},
		{"cross-tenant scope", tenantdb.System(), eventstore.AuditFilter{TenantID: a}, "[vm_started user_created vm_stopped]"},
		{"another tenant's scope", tenantdb.Tenant(b), eventstore.AuditFilter{TenantID: a}, "[]"},
	} {
		if got := list(c.sc, c.f); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
