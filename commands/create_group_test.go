package commands_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/accountdb/accountdb/vault"
	"github.com/google/uuid"
)

// createEnv is a cluster offering debian-12 (with a pool of five addresses,
// 10.0.0.2–6, when withPool; not its default: creates name it) and tenants
// made on demand.
type createEnv struct {
	t       *testing.T
	f       *pgFixture
	h       *commands.Handler
	pool    uuid.UUID
	cluster uuid.UUID
	admin   commands.Actor
}

func newCreateEnv(t *testing.T, withPool bool) *createEnv {
	t.Helper()
	ctx := context.Background()
	f := newPGFixture(t)
	v, err := vault.New(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		t.Fatal(err)
	}
	e := &createEnv{t: t, f: f, h: f.h.WithVault(v), admin: commands.Actor{TenantID: domain.PlatformTenant, Roles: []string{auth.RolePlatformAdmin}}}
	cluster, err := e.h.RegisterCluster(ctx, e.admin, commands.Options{}, commands.NewCluster{Name: "pve", APIURL: "https://pve.example:8006/api2/json",
		TokenID: pvesim.DefaultTokenID, TokenSecret: pvesim.DefaultTokenSecret})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.h.RecordInventory(ctx, protocol.Inventory{ClusterID: cluster.ID, ObservedAt: time.Now(),
		Templates: []protocol.Template{{Name: "debian-12", Kind: "qemu", Node: "pve1", PVEVMID: 9000}}}); err != nil {
		t.Fatal(err)
	}
	e.cluster = cluster.ID
	if withPool {
		p, err := e.h.CreateIPPool(ctx, e.admin, commands.Options{}, domain.IPPoolInput{Name: "lan", ClusterID: cluster.ID, Bridge: "vmbr0",
			CIDR: "10.0.0.0/29", Gateway: "10.0.0.1", RangeStart: "10.0.0.2", RangeEnd: "10.0.0.6"})
		if err != nil {
			t.Fatal(err)
		}
		e.pool = p.ID
	}
	return e
}

func (e *createEnv) tenant(name string, q domain.Quota) uuid.UUID {
	e.t.Helper()
	res, err := e.h.CreateTenant(context.Background(), e.admin, commands.Options{}, name, q)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.ID
}

// createAll sends one create per entry of tenants, all at once (a tenant
// listed n times creates n VMs), each with key when key is set, and
// returns every outcome.
func (e *createEnv) createAll(tenants []uuid.UUID, key string) ([]commands.Result, []error) {
	var (
		wg   sync.WaitGroup
		res  = make([]commands.Result, len(tenants))
		errs = make([]error, len(tenants))
		user = uuid.New()
	)
	for i, ten := range tenants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("vm-%d", i)
			if key != "" {
				name = "repeated"
			}
			res[i], errs[i] = e.h.CreateVM(context.Background(), commands.Actor{TenantID: ten, UserID: user}, commands.Options{IdempotencyKey: key},
				commands.NewVM{TenantID: ten, Name: name, Kind: domain.KindQEMU, Spec: domain.VMSpec{Cores: 2, MemoryMB: 512, DiskGB: 5},
					Template: "debian-12", IPPoolID: e.pool})
		}()
	}
	wg.Wait()
	return res, errs
}

// usage is tenant's row in tenant_usage, as the quota reads it.
func (e *createEnv) usage(tenant uuid.UUID) commands.Usage {
	e.t.Helper()
	var u commands.Usage
	if err := e.f.db.AdminConn(e.t).QueryRow(context.Background(), `SELECT vms, cores, memory_mb, disk_gb, ipv4 FROM tenant_usage WHERE tenant_id = $1`,
		tenant).Scan(&u.VMs, &u.Cores, &u.MemoryMB, &u.DiskGB, &u.IPv4); err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *createEnv) requests(tenant uuid.UUID) int {
	e.t.Helper()
	var n int
	if err := e.f.db.AdminConn(e.t).QueryRow(context.Background(), `SELECT count(*) FROM events WHERE event_type = 'vm_create_requested' AND tenant_id = $1`,
		tenant).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func repeat(id uuid.UUID, n int) []uuid.UUID {
	out := make([]uuid.UUID, n)
	for i := range out {
		out[i] = id
	}
	return out
}

func countErrors(errs []error, target error) (matched int, other []error) {
	for _, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, target):
			matched++
		default:
			other = append(other, err)
		}
	}
	return matched, other
}

// 40 creates at once in one tenant whose quota has room for 7: exactly 7
// are recorded, 33 refused as over the quota, and the tenant's counters
// hold the 7 exactly.
func TestConcurrentCreatesOfOneTenantFillTheQuotaExactly(t *testing.T) {
	e := newCreateEnv(t, false)
	ten := e.tenant("acme", domain.Quota{MaxVMs: 7, MaxCores: 100, MaxMemoryMB: 1 << 20, MaxDiskGB: 1000})
	_, errs := e.createAll(repeat(ten, 40), "")
	refused, other := countErrors(errs, domain.ErrQuotaExceeded)
	if refused != 33 || len(other) > 0 {
		t.Fatalf("%d refused over the quota (want 33), other errors: %v", refused, other)
	}
	if n := e.requests(ten); n != 7 {
		t.Fatalf("%d creates recorded, want 7", n)
	}
	if u := e.usage(ten); u != (commands.Usage{VMs: 7, Cores: 14, MemoryMB: 7 * 512, DiskGB: 35}) {
		t.Fatalf("usage %+v", u)
	}
}

// Creates over two tenants from one pool of five addresses, whose max_ipv4
// (2 and 3) add up to the pool: each tenant gets exactly its share, the
// rest are over the quota, every address is distinct; then the pool is
// full, and a third tenant's create is refused as such.
func TestConcurrentCreatesFromOnePoolHoldMaxIPv4AndThePool(t *testing.T) {
	ctx := context.Background()
	e := newCreateEnv(t, true)
	roomy := domain.Quota{MaxVMs: 100, MaxCores: 1000, MaxMemoryMB: 1 << 20, MaxDiskGB: 10000}
	limited := func(n int) domain.Quota { q := roomy; q.MaxIPv4 = n; return q }
	a, b := e.tenant("a", limited(2)), e.tenant("b", limited(3))
	res, errs := e.createAll(append(repeat(a, 8), repeat(b, 8)...), "")
	refused, other := countErrors(errs, domain.ErrQuotaExceeded)
	if refused != 11 || len(other) > 0 {
		t.Fatalf("%d refused over the quota (want 11), other errors: %v", refused, other)
	}
	seen := map[string]bool{}
	for i, r := range res {
		if errs[i] != nil {
			continue
		}
		ten := a
		if i >= 8 {
			ten = b
		}
		vm, err := e.h.LoadVM(ctx, ten, r.ID)
		if err != nil || vm.Network == nil || seen[vm.Network.IPv4] {
			t.Fatalf("VM %d: %+v %v (addresses so far %v)", i, vm, err, seen)
		}
		seen[vm.Network.IPv4] = true
	}
	if ua, ub := e.usage(a), e.usage(b); ua.IPv4 != 2 || ua.VMs != 2 || ub.IPv4 != 3 || ub.VMs != 3 {
		t.Fatalf("usage a %+v, b %+v", ua, ub)
	}
	c := e.tenant("c", roomy)
	_, errs = e.createAll([]uuid.UUID{c, c}, "")
	if exhausted, other := countErrors(errs, domain.ErrPoolExhausted); exhausted != 2 || len(other) > 0 {
		t.Fatalf("%d refused as pool_exhausted (want 2), other errors: %v", exhausted, other)
	}
	if p, err := e.h.LoadIPPool(ctx, e.pool); err != nil || len(p.Allocations) != 5 {
		t.Fatalf("pool %+v %v", p, err)
	}
}

// The same Idempotency-Key sent six times at once, among other creates:
// the creates that queue together fail together on the one VM stream, are
// retried one by one, and all six get the one VM; it counts once.
func TestConcurrentRepeatsOfOneCreateGetOneVM(t *testing.T) {
	e := newCreateEnv(t, false)
	ten := e.tenant("acme", domain.Quota{MaxVMs: 100, MaxCores: 1000, MaxMemoryMB: 1 << 20, MaxDiskGB: 10000})
	res, errs := e.createAll(repeat(ten, 6), "same-key")
	for i, err := range errs {
		if err != nil || res[i].ID != res[0].ID {
			t.Fatalf("repeat %d: %+v %v (first %s)", i, res[i], err, res[0].ID)
		}
	}
	if n := e.requests(ten); n != 1 {
		t.Fatalf("%d creates recorded, want 1", n)
	}
	if u := e.usage(ten); u.VMs != 1 {
		t.Fatalf("usage %+v", u)
	}
}

// A create group takes its tenants' lock: while another
// transaction holds the lock that every change of the tenant takes (as a
// second replica's would), the create waits, and it commits once the lock
// is released. 84 is pgstore's tenantLockNamespace.
func TestCreateGroupWaitsForTheTenantLock(t *testing.T) {
	ctx := context.Background()
	e := newCreateEnv(t, false)
	ten := e.tenant("locked", domain.Quota{MaxVMs: 5, MaxCores: 100, MaxMemoryMB: 1 << 20, MaxDiskGB: 1000})
	holder, err := e.f.db.AdminConn(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_xact_lock(84, hashtext($1))`, ten.String()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, errs := e.createAll([]uuid.UUID{ten}, "")
		done <- errs[0]
	}()
	select {
	case err := <-done:
		t.Fatalf("the create committed (%v) while another transaction held its tenant's lock", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("after the lock was released: %v", err)
	}
	if n := e.requests(ten); n != 1 {
		t.Fatalf("%d creates recorded, want 1", n)
	}
}
