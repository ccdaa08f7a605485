package commands_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/commands/pgstore"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/accountdb/accountdb/vault"
	"github.com/google/uuid"
)

// Two processes allocate from one pool: each caches the pool, so the
// second process's allocation makes the first one's cache stale. Its next
// create conflicts on the pool's version, reads the new event and takes the
// next address: the stream's version, not the cache, decides.
func TestAllocationAcrossProcessesRetriesOnThePoolsVersion(t *testing.T) {
	f, h1, pool, _, create := poolFixture(t)
	h2 := commands.New(f.store, pgstore.New(f.store), auth.DefaultPasswordHasher(), commands.SessionConfig{})
	got := []string{create(h1, "a"), create(h2, "b"), create(h1, "c"), create(h2, "d")}
	want := []string{"10.0.0.2/29", "10.0.0.3/29", "10.0.0.4/29", "10.0.0.5/29"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("addresses %v, want %v", got, want)
		}
	}
	p, err := h1.LoadIPPool(context.Background(), pool)
	if err != nil || len(p.Allocations) != 4 || p.Version != 5 {
		t.Fatalf("pool %+v %v", p, err)
	}
}

// poolFixture is a cluster offering debian-12 with a default pool of five
// addresses (10.0.0.2–6), a tenant, and create, which makes a VM of that
// tenant through a handler and answers its IPv4 address.
func poolFixture(t *testing.T) (f *pgFixture, h1 *commands.Handler, pool, tenant uuid.UUID, create func(*commands.Handler, string) string) {
	t.Helper()
	ctx := context.Background()
	f = newPGFixture(t)
	v, err := vault.New(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	h1 = f.h.WithVault(v)
	platform := commands.Actor{TenantID: domain.PlatformTenant, Roles: []string{auth.RolePlatformAdmin}}
	cluster, err := h1.RegisterCluster(ctx, platform, commands.Options{}, commands.NewCluster{Name: "pve", APIURL: "https://pve.example:8006/api2/json",
		TokenID: pvesim.DefaultTokenID, TokenSecret: pvesim.DefaultTokenSecret})
	if err != nil {
		t.Fatal(err)
	}
	if err := h1.RecordInventory(ctx, protocol.Inventory{ClusterID: cluster.ID, ObservedAt: time.Now(),
		Templates: []protocol.Template{{Name: "debian-12", Kind: "qemu", Node: "pve1", PVEVMID: 9000}}}); err != nil {
		t.Fatal(err)
	}
	p, err := h1.CreateIPPool(ctx, platform, commands.Options{}, domain.IPPoolInput{Name: "lan", ClusterID: cluster.ID, Bridge: "vmbr0",
		CIDR: "10.0.0.0/29", Gateway: "10.0.0.1", RangeStart: "10.0.0.2", RangeEnd: "10.0.0.6", Default: true})
	if err != nil {
		t.Fatal(err)
	}
	ten, err := h1.CreateTenant(ctx, platform, commands.Options{}, "acme", domain.Quota{MaxVMs: 10, MaxCores: 10, MaxMemoryMB: 10000, MaxDiskGB: 100})
	if err != nil {
		t.Fatal(err)
	}
	create = func(h *commands.Handler, name string) string {
		t.Helper()
		res, err := h.CreateVM(ctx, commands.Actor{TenantID: ten.ID, UserID: uuid.New()}, commands.Options{}, commands.NewVM{TenantID: ten.ID,
			Name: name, Kind: domain.KindQEMU, Spec: domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 5}, Template: "debian-12"})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		vm, err := h.LoadVM(ctx, ten.ID, res.ID)
		if err != nil || vm.Network == nil {
			t.Fatalf("VM %s: %+v %v", name, vm, err)
		}
		return vm.Network.IPv4
	}
	return f, h1, p.ID, ten.ID, create
}

// crashingTables dies, while crash is set, inside the transaction of a
// group of creates that take an address: after the VM's request and its
// allocation are written, before anything commits, as a core killed there
// would (PostgreSQL rolls the transaction back).
type crashingTables struct {
	commands.Tables
	crash atomic.Bool
}

var errCrashed = errors.New("the core died in the middle of the transaction")

func (c *crashingTables) AppendGroup(ctx context.Context, tenants []uuid.UUID,
	decide func(context.Context, map[uuid.UUID]commands.TenantState) (commands.Group, error)) ([]eventstore.AppendResult, error) {
	return c.Tables.AppendGroup(ctx, tenants, func(ctx context.Context, state map[uuid.UUID]commands.TenantState) (commands.Group, error) {
		g, err := decide(ctx, state)
		allocates := slices.ContainsFunc(g.Appends, func(a eventstore.Append) bool { return a.Stream.Type == domain.StreamIPPool })
		if err != nil || !c.crash.Load() || !allocates {
			return g, err
		}
		write := g.Write
		g.Write = func(ctx context.Context, tt commands.TxTables) error {
			if write != nil {
				if err := write(ctx, tt); err != nil {
					return err
				}
			}
			return errCrashed
		}
		return g, nil
	})
}

// AppendGroupExpecting, while crash is set, finds the group not as
// expected, so that the group is decided again and written by
// AppendGroup, where it dies.
func (c *crashingTables) AppendGroupExpecting(ctx context.Context, expected map[uuid.UUID]commands.TenantState,
	decide func(context.Context, map[uuid.UUID]commands.TenantState) (commands.Group, error)) ([]eventstore.AppendResult, error) {
	if c.crash.Load() {
		return nil, commands.ErrGroupNotAsExpected
	}
	return c.Tables.AppendGroupExpecting(ctx, expected, decide)
}

// A create that dies between deciding its address and committing leaves
// nothing behind: no VM, no allocation. The same process afterwards (its
// cached pool was not advanced) and a new one (a restarted core, nothing
// cached) both take addresses from what the pool's stream holds, so the
// address the dead create had picked is handed out once, and nothing twice.
func TestAllocationAfterACrashInTheTransaction(t *testing.T) {
	ctx := context.Background()
	f, h1, pool, tenant, create := poolFixture(t)
	ct := &crashingTables{Tables: pgstore.New(f.store)}
	dying := commands.New(f.store, ct, auth.DefaultPasswordHasher(), commands.SessionConfig{})
	if got := create(dying, "warm"); got != "10.0.0.2/29" { // its pool cache is now warm
		t.Fatalf("first address %s", got)
	}

	ct.crash.Store(true)
	p, err := h1.LoadIPPool(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dying.CreateVM(ctx, commands.Actor{TenantID: tenant, UserID: uuid.New()}, commands.Options{}, commands.NewVM{TenantID: tenant,
		Name: "lost", Kind: domain.KindQEMU, Spec: domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 5}, Template: "debian-12"})
	if !errors.Is(err, errCrashed) {
		t.Fatalf("the dying create: %v", err)
	}
	if after, err := h1.LoadIPPool(ctx, pool); err != nil || len(after.Allocations) != 1 || after.Version != p.Version {
		t.Fatalf("the pool after the dead create: %+v %v", after, err)
	}
	var requests int
	if err := f.db.AdminConn(t).QueryRow(ctx, `SELECT count(*) FROM events WHERE event_type = 'vm_create_requested' AND data->>'name' = 'lost'`).
		Scan(&requests); err != nil || requests != 0 {
		t.Fatalf("%d requests of the dead create recorded (%v)", requests, err)
	}
	ct.crash.Store(false)

	restarted := commands.New(f.store, pgstore.New(f.store), auth.DefaultPasswordHasher(), commands.SessionConfig{})
	got := []string{create(dying, "a"), create(restarted, "b"), create(dying, "c")}
	if want := []string{"10.0.0.3/29", "10.0.0.4/29", "10.0.0.5/29"}; !slices.Equal(got, want) {
		t.Fatalf("addresses after the crash %v, want %v", got, want)
	}
}
