package commands_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/commands/pgstore"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/vault"
	"github.com/google/uuid"
)

// countingTables counts how each create group was written.
type countingTables struct {
	commands.Tables
	readFirst, expecting atomic.Int32
}

func (c *countingTables) AppendGroup(ctx context.Context, tenants []uuid.UUID,
	decide func(context.Context, map[uuid.UUID]commands.TenantState) (commands.Group, error)) ([]eventstore.AppendResult, error) {
	c.readFirst.Add(1)
	return c.Tables.AppendGroup(ctx, tenants, decide)
}

func (c *countingTables) AppendGroupExpecting(ctx context.Context, expected map[uuid.UUID]commands.TenantState,
	decide func(context.Context, map[uuid.UUID]commands.TenantState) (commands.Group, error)) ([]eventstore.AppendResult, error) {
	c.expecting.Add(1)
	return c.Tables.AppendGroupExpecting(ctx, expected, decide)
}

// A process's create groups are decided on the tenant as its last group
// left it, in one round trip, and still exactly on the tenant's quota:
//   - its first create reads the tenant's usage under the lock; the next
//     ones do not;
//   - after another process's create (the usage changed behind it), a create
//     that would fit the usage it knows but not the real one is refused;
//   - after the usage dropped behind it (a VM's release), a create that
//     would not fit the usage it knows but fits the real one is admitted:
//     a refusal is only ever decided on the usage read under the lock.
func TestCreatesDecideOnTheTenantsKnownStateOnlyWhenItHolds(t *testing.T) {
	ctx := context.Background()
	e := newCreateEnv(t, false)
	ten := e.tenant("known", domain.Quota{MaxVMs: 3, MaxCores: 100, MaxMemoryMB: 1 << 20, MaxDiskGB: 1000})
	v, err := vault.New(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		t.Fatal(err)
	}
	process := func() (*commands.Handler, *countingTables) {
		ct := &countingTables{Tables: pgstore.New(e.f.store)}
		return commands.New(e.f.store, ct, auth.DefaultPasswordHasher(), commands.SessionConfig{}).WithVault(v), ct
	}
	one, counted := process()
	other, _ := process()
	create := func(h *commands.Handler, name string) error {
		_, err := h.CreateVM(ctx, commands.Actor{TenantID: ten, UserID: uuid.New()}, commands.Options{}, commands.NewVM{TenantID: ten,
			Name: name, Kind: domain.KindQEMU, Spec: domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 5}, Template: "debian-12"})
		return err
	}

	for _, name := range []string{"a", "b"} {
		if err := create(one, name); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	if r, x := counted.readFirst.Load(), counted.expecting.Load(); r != 1 || x != 1 {
		t.Fatalf("two creates: %d groups read the tenant first, %d were decided on it as known; want 1 and 1", r, x)
	}

	if err := create(other, "c"); err != nil {
		t.Fatalf("the other process's create: %v", err)
	}
	if err := create(one, "d"); !errors.Is(err, domain.ErrQuotaExceeded) {
		t.Fatalf("a create over the quota the other process filled: %v, want quota_exceeded", err)
	}
	if n, u := e.requests(ten), e.usage(ten); n != 3 || u.VMs != 3 {
		t.Fatalf("%d creates recorded, usage %+v; want 3 and 3 VMs", n, u)
	}

	// A VM's release as the agent's deletion would record it.
	if _, err := e.f.db.AdminConn(t).Exec(ctx, `UPDATE tenant_usage SET vms = vms - 1, cores = cores - 1, memory_mb = memory_mb - 512,
		disk_gb = disk_gb - 5 WHERE tenant_id = $1`, ten); err != nil {
		t.Fatal(err)
	}
	if err := create(one, "e"); err != nil {
		t.Fatalf("a create that fits the quota once a VM was released: %v", err)
	}
	if n, u := e.requests(ten), e.usage(ten); n != 4 || u.VMs != 3 {
		t.Fatalf("%d creates recorded, usage %+v; want 4 and 3 VMs", n, u)
	}
}
