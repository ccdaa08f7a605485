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

// A group's transaction begins with its tenants' locks and usage in one
// round trip, and writes its appends and the usage they add in the next
// (pgstore.AppendGroup): decide sees each tenant's usage and version; a
// usage change that does not fit its quota fails the whole group, so that
// nothing of it is written; and the failed group's connection goes back
// to the pool outside any transaction (no session is left idle in one,
// holding the tenant's lock).
func TestAppendGroupDecidesOnUsageAndWritesAllOrNothing(t *testing.T) {
	ctx := context.Background()
	e := newCreateEnv(t, false)
	quota := domain.Quota{MaxVMs: 1, MaxCores: 100, MaxMemoryMB: 1 << 20, MaxDiskGB: 1000}
	ten := e.tenant("grouped", quota)
	tables := pgstore.New(e.f.store)
	vm := eventlog.StreamID{Type: domain.StreamVM, ID: uuid.New()}
	group := func(vms int) (commands.TenantState, error) {
		var seen commands.TenantState
		_, err := tables.AppendGroup(ctx, []uuid.UUID{ten}, func(_ context.Context, state map[uuid.UUID]commands.TenantState) (commands.Group, error) {
			seen = state[ten]
			return commands.Group{
				Appends: []eventstore.Append{{Stream: vm, TenantID: ten, Expected: eventstore.NoStream(),
					Events: []eventstore.NewEvent{{Type: "vm_test_appended", Data: map[string]int{"vms": vms}}}}},
				Usage: []commands.UsageChange{{Tenant: ten, Delta: commands.Usage{VMs: vms, Cores: vms}, Quota: quota}},
			}, nil
		})
		return seen, err
	}

	seen, err := group(2)
	if !errors.Is(err, domain.ErrQuotaExceeded) {
		t.Fatalf("a group adding 2 VMs to a quota of 1: %v, want quota_exceeded", err)
	}
	if seen.Version == 0 || seen.Usage != (commands.Usage{}) {
		t.Fatalf("decide saw %+v, want the tenant's version and no usage", seen)
	}
	var events int
	admin := e.f.db.AdminConn(t)
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM events WHERE stream_id = $1`, vm.String()).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != 0 {
		t.Fatalf("the refused group wrote %d events", events)
	}
	if idle := e.idleInTransaction(); idle != 0 {
		t.Fatalf("%d sessions left idle in a transaction after the refused group", idle)
	}

	if _, err := group(1); err != nil {
		t.Fatalf("a group within the quota: %v", err)
	}
	if u := e.usage(ten); u != (commands.Usage{VMs: 1, Cores: 1}) {
		t.Fatalf("usage after the group: %+v, want 1 VM and 1 core", u)
	}
	seen, err = group(1)
	if !errors.Is(err, domain.ErrConflict) && !errors.As(err, new(*eventstore.ConflictError)) {
		t.Fatalf("the same stream appended again as new: %v, want a version conflict", err)
	}
	if seen.Usage != (commands.Usage{VMs: 1, Cores: 1}) {
		t.Fatalf("decide saw usage %+v, want the committed 1 VM and 1 core", seen.Usage)
	}
	if u := e.usage(ten); u != (commands.Usage{VMs: 1, Cores: 1}) {
		t.Fatalf("usage after the conflicting group: %+v, want it unchanged", u)
	}
}

// idleInTransaction counts the database's sessions left idle inside a
// transaction (a group's connection given back without its ROLLBACK).
func (e *createEnv) idleInTransaction() int {
	e.t.Helper()
	var idle int
	if err := e.f.db.AdminConn(e.t).QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&idle); err != nil {
		e.t.Fatal(err)
	}
	return idle
}
