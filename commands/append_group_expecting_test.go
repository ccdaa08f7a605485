package commands_test

import (
	"context"
	"errors"
	"testing"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/commands/pgstore"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
)

// A group sent with its commit in one round trip (pgstore's
// AppendGroupExpecting) commits only when its tenant is in exactly the
// state it was decided on and every append is written: a group expecting
// another usage or another version of the tenant, or one of whose appends
// is refused (its stream exists), writes nothing (no event of any of its
// appends, no usage) and leaves no session in a transaction; the same
// group on the state as it is commits, events and usage together.
func TestAppendGroupExpectingCommitsOnlyOnTheStateExpected(t *testing.T) {
	ctx := context.Background()
	e := newCreateEnv(t, false)
	quota := domain.Quota{MaxVMs: 10, MaxCores: 100, MaxMemoryMB: 1 << 20, MaxDiskGB: 1000}
	ten := e.tenant("expecting", quota)
	tables := pgstore.New(e.f.store)
	admin := e.f.db.AdminConn(t)

	var actual commands.TenantState // as read under the tenant's lock
	if _, err := tables.AppendGroup(ctx, []uuid.UUID{ten}, func(_ context.Context, s map[uuid.UUID]commands.TenantState) (commands.Group, error) {
		actual = s[ten]
		return commands.Group{}, nil
	}); err != nil || actual.Version == 0 {
		t.Fatalf("the tenant's state: %+v %v", actual, err)
	}
	newVM := func() eventlog.StreamID { return eventlog.StreamID{Type: domain.StreamVM, ID: uuid.New()} }
	create := func(vm eventlog.StreamID) eventstore.Append {
		return eventstore.Append{Stream: vm, TenantID: ten, Expected: eventstore.NoStream(),
			Events: []eventstore.NewEvent{{Type: "vm_test_appended", Data: map[string]string{"vm": vm.ID.String()}}}}
	}
	group := func(st commands.TenantState, apps ...eventstore.Append) ([]eventstore.AppendResult, error) {
		return tables.AppendGroupExpecting(ctx, map[uuid.UUID]commands.TenantState{ten: st},
			func(_ context.Context, s map[uuid.UUID]commands.TenantState) (commands.Group, error) {
				if s[ten] != st {
					t.Errorf("decided on %+v, want the state expected, %+v", s[ten], st)
				}
				return commands.Group{Appends: apps,
					Usage: []commands.UsageChange{{Tenant: ten, Delta: commands.Usage{VMs: len(apps), Cores: len(apps)}, Quota: quota}}}, nil
			})
	}
	events := func(vm eventlog.StreamID) int {
		t.Helper()
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM events WHERE stream_id = $1`, vm.String()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	usage := func() commands.Usage { // no row yet is no usage
		t.Helper()
		var u commands.Usage
		if err := admin.QueryRow(ctx, `SELECT coalesce(sum(vms), 0), coalesce(sum(cores), 0) FROM tenant_usage WHERE tenant_id = $1`,
			ten).Scan(&u.VMs, &u.Cores); err != nil {
			t.Fatal(err)
		}
		return u
	}
	// refused sends a group whose first append is to a new stream, fresh,
	// and checks that nothing of it was written.
	refused := func(what string, st commands.TenantState, wantUsage commands.Usage, fresh eventlog.StreamID, more ...eventstore.Append) {
		t.Helper()
		if _, err := group(st, append([]eventstore.Append{create(fresh)}, more...)...); !errors.Is(err, commands.ErrGroupNotAsExpected) {
			t.Fatalf("%s: %v, want ErrGroupNotAsExpected", what, err)
		}
		if n := events(fresh); n != 0 {
			t.Fatalf("%s: %d events written", what, n)
		}
		if u := usage(); u != wantUsage {
			t.Fatalf("%s: usage %+v, want %+v", what, u, wantUsage)
		}
		if idle := e.idleInTransaction(); idle != 0 {
			t.Fatalf("%s: %d sessions left idle in a transaction", what, idle)
		}
	}

	refused("another usage expected", commands.TenantState{Version: actual.Version, Usage: commands.Usage{VMs: 1}}, commands.Usage{}, newVM())
	refused("another version expected", commands.TenantState{Version: actual.Version + 1}, commands.Usage{}, newVM())

	first := newVM()
	res, err := group(actual, create(first))
	if err != nil || len(res) != 1 || res[0].LastVersion != 1 || res[0].LastPosition == 0 {
		t.Fatalf("the group on the state as it is: %+v %v", res, err)
	}
	one := commands.Usage{VMs: 1, Cores: 1}
	if u := usage(); u != one || events(first) != 1 {
		t.Fatalf("after the group: usage %+v, %d events; want %+v and 1", u, events(first), one)
	}

	then := commands.TenantState{Version: actual.Version, Usage: one}
	second := newVM()
	refused("an append refused beside one written", then, one, second, create(first))
	if _, err := group(then, create(second)); err != nil {
		t.Fatalf("the same group without the refused append: %v", err)
	}
	if u := usage(); u != (commands.Usage{VMs: 2, Cores: 2}) || events(second) != 1 {
		t.Fatalf("after the second group: usage %+v, %d events", u, events(second))
	}
}
