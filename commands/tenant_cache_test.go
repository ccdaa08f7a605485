package commands_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/commands/pgstore"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
)

// otherProcess is a second handler on the same database: what another
// replica of the core sees and changes, behind the first handler's caches.
func (e *createEnv) otherProcess() *commands.Handler {
	store := eventstore.New(e.f.db.App, nil)
	return commands.New(store, pgstore.New(store), auth.DefaultPasswordHasher(), commands.SessionConfig{})
}

func (e *createEnv) createOne(tenant uuid.UUID, name string) error {
	_, err := e.h.CreateVM(context.Background(), commands.Actor{TenantID: tenant, UserID: uuid.New()}, commands.Options{},
		commands.NewVM{TenantID: tenant, Name: name, Kind: domain.KindQEMU, Spec: domain.VMSpec{Cores: 2, MemoryMB: 512, DiskGB: 5},
			Template: "debian-12"})
	return err
}

// A create decides on the tenant as it is when the create commits, even
// when this process read the tenant before another one suspended it,
// lowered its quota or resumed it.
func TestCreatesSeeTenantChangesMadeElsewhere(t *testing.T) {
	e := newCreateEnv(t, false)
	ctx := context.Background()
	tenant := e.tenant("acme", domain.Quota{MaxVMs: 10, MaxCores: 100, MaxMemoryMB: 1 << 20, MaxDiskGB: 1000})
	if err := e.createOne(tenant, "first"); err != nil {
		t.Fatalf("first create: %v", err)
	}
	other := e.otherProcess()

	if _, err := other.SuspendTenant(ctx, e.admin, commands.Options{}, tenant); err != nil {
		t.Fatal(err)
	}
	if err := e.createOne(tenant, "while-suspended"); !errors.Is(err, domain.ErrTenantSuspended) {
		t.Fatalf("create after a suspension elsewhere: %v, want %v", err, domain.ErrTenantSuspended)
	}
	if _, err := other.ResumeTenant(ctx, e.admin, commands.Options{}, tenant); err != nil {
		t.Fatal(err)
	}
	if err := e.createOne(tenant, "after-resume"); err != nil {
		t.Fatalf("create after a resume elsewhere: %v", err)
	}

	one := 2
	if _, err := other.UpdateTenant(ctx, e.admin, commands.Options{}, tenant, nil,
		&domain.Quota{MaxVMs: one, MaxCores: 100, MaxMemoryMB: 1 << 20, MaxDiskGB: 1000}); err != nil {
		t.Fatal(err)
	}
	if err := e.createOne(tenant, "past-new-quota"); !errors.Is(err, domain.ErrQuotaExceeded) {
		t.Fatalf("create past a quota lowered elsewhere: %v, want %v", err, domain.ErrQuotaExceeded)
	}
	if got := e.requests(tenant); got != 2 {
		t.Fatalf("%d create requests recorded, want 2 (first, after-resume)", got)
	}
	if u := e.usage(tenant); u.VMs != 2 {
		t.Fatalf("tenant_usage counts %d VMs, want 2", u.VMs)
	}
}

// tenantLoads counts the loads of tenant streams through the store.
type tenantLoads struct {
	*eventstore.Store
	n atomic.Int64
}

func (s *tenantLoads) FoldFromSnapshot(ctx context.Context, sc tenantdb.Scope, stream eventlog.StreamID, codeVersion int, until time.Time,
	restore func(eventstore.Snapshot) error, fn func(eventlog.Event) error) (int64, error, error) {
	if stream.Type == domain.StreamTenant {
		s.n.Add(1)
	}
	return s.Store.FoldFromSnapshot(ctx, sc, stream, codeVersion, until, restore, fn)
}

// A burst of creates on a process that has not read the tenant yet reads
// it once: the creates that miss the cache while the read runs wait for it.
func TestABurstOfCreatesReadsItsTenantOnce(t *testing.T) {
	e := newCreateEnv(t, false)
	tenant := e.tenant("acme", domain.Quota{MaxVMs: 100, MaxCores: 1000, MaxMemoryMB: 1 << 20, MaxDiskGB: 10_000})
	store := &tenantLoads{Store: eventstore.New(e.f.db.App, nil)}
	e.h = commands.New(store, pgstore.New(store.Store), auth.DefaultPasswordHasher(), commands.SessionConfig{})
	_, errs := e.createAll(repeat(tenant, 20), "")
	for _, err := range errs {
		if err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	if got := e.requests(tenant); got != 20 {
		t.Fatalf("%d create requests recorded, want 20", got)
	}
	if n := store.n.Load(); n != 1 {
		t.Fatalf("the tenant's stream was read %d times for 20 creates at once, want 1", n)
	}
}
