package commands

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
)

// tenantCache keeps each tenant as this process last loaded it for a VM
// create, so that a create reads no tenant at all in the common case: a
// POST /v1/vms used to read the tenant's stream (its snapshot and the
// events after it) every time (issue 16). An entry may be stale: another
// process suspended the tenant or changed its quota. The create's group
// therefore reads the tenant stream's version under the tenant's lock,
// which every change of a tenant also takes (onTenantWith), and sends a
// create decided on another version back with errStaleTenant; CreateVM
// then decides again on the tenant read afresh. So a create is decided on
// the tenant as it is when the create commits, which reading the tenant
// before the transaction never guaranteed.
type tenantCache struct {
	mu      sync.Mutex
	tenants map[uuid.UUID]domain.Tenant
}

// tenantCacheMax bounds the cache; past it, the cache starts over (a
// tenant costs a read the next time, nothing else).
const tenantCacheMax = 10_000

// staleTenantRetries is how many times a create decides again after its
// tenant changed under it before it answers a conflict.
const staleTenantRetries = 3

// errStaleTenant: the create was decided on a version of its tenant that is
// no longer the latest (create_commit.go); CreateVM decides it again.
var errStaleTenant = errors.New("commands: the tenant changed while the create was decided")

func (c *tenantCache) get(id uuid.UUID) (domain.Tenant, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tenants[id]
	return t, ok
}

func (c *tenantCache) put(t domain.Tenant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tenants == nil || len(c.tenants) >= tenantCacheMax {
		c.tenants = map[uuid.UUID]domain.Tenant{}
	}
	c.tenants[t.ID] = t
}

func (c *tenantCache) forget(id uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tenants, id)
}

// openTenantForCreate is openTenant, from the cache when it holds the
// tenant (never when fresh), else read meanwhile: it returns what waits
// for the answer, so the caller can look other things up in the meantime.
// Only a tenant that accepts commands is kept: a refusal is always read
// afresh, so a tenant resumed elsewhere is never refused from here.
func (h *Handler) openTenantForCreate(ctx context.Context, id uuid.UUID, fresh bool) func() (*domain.Tenant, error) {
	if !fresh {
		if t, ok := h.tenants.get(id); ok {
			return func() (*domain.Tenant, error) { return &t, nil }
		}
	}
	type opened struct {
		t   *domain.Tenant
		err error
	}
	c := make(chan opened, 1)
	go func() {
		t, err := h.openTenant(ctx, id)
		if err == nil && t.Exists() {
			h.tenants.put(*t)
		}
		c <- opened{t, err}
	}()
	return sync.OnceValues(func() (*domain.Tenant, error) {
		o := <-c
		return o.t, o.err
	})
}

// staleTenantConflict is the answer of a create whose tenant kept changing
// while it was decided.
func staleTenantConflict() error {
	return fmt.Errorf("%w: the tenant changed while the VM was being created; try again", domain.ErrConflict)
}
