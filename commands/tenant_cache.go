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
	// reading are the reads in flight: creates that miss the cache while
	// one runs wait for it, so a burst of creates on a cold process reads
	// its tenant once, not once each.
	reading map[uuid.UUID]*tenantRead
}

// tenantRead is one read of a tenant for creates; t and err are set
// before done is closed.
type tenantRead struct {
	done chan struct{}
	t    *domain.Tenant
	err  error
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

func (c *tenantCache) forget(id uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tenants, id)
}

// openTenantForCreate is openTenant, from the cache when it holds the
// tenant, else from a read of it started now or already running (a fresh
// read, after the cached tenant turned out stale, joins none). It returns
// what waits for the answer, so the caller can look other things up in the
// meantime. Only a tenant that accepts commands is kept: a refusal is
// always read afresh, so a tenant resumed elsewhere is never refused from
// here.
func (h *Handler) openTenantForCreate(ctx context.Context, id uuid.UUID, fresh bool) func() (*domain.Tenant, error) {
	c := &h.tenants
	c.mu.Lock()
	if !fresh {
		if t, ok := c.tenants[id]; ok {
			c.mu.Unlock()
			return func() (*domain.Tenant, error) { return &t, nil }
		}
		if r := c.reading[id]; r != nil {
			c.mu.Unlock()
			return r.wait(ctx)
		}
	}
	r := &tenantRead{done: make(chan struct{})}
	if !fresh {
		if c.reading == nil {
			c.reading = map[uuid.UUID]*tenantRead{}
		}
		c.reading[id] = r
	}
	c.mu.Unlock()
	go func() {
		// Others may wait for this read: the first caller's end must not
		// cut it short (the statement timeout bounds it).
		r.t, r.err = h.openTenant(context.WithoutCancel(ctx), id)
		c.mu.Lock()
		if r.err == nil && r.t.Exists() {
			if c.tenants == nil || len(c.tenants) >= tenantCacheMax {
				c.tenants = map[uuid.UUID]domain.Tenant{}
			}
			c.tenants[id] = *r.t
		}
		if c.reading[id] == r {
			delete(c.reading, id)
		}
		c.mu.Unlock()
		close(r.done)
	}()
	return r.wait(ctx)
}

// wait returns what waits for r's answer (a copy of the tenant for each
// caller) or for ctx's end.
func (r *tenantRead) wait(ctx context.Context) func() (*domain.Tenant, error) {
	return sync.OnceValues(func() (*domain.Tenant, error) {
		select {
		case <-r.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if r.err != nil {
			return nil, r.err
		}
		t := *r.t
		return &t, nil
	})
}

// staleTenantConflict is the answer of a create whose tenant kept changing
// while it was decided.
func staleTenantConflict() error {
	return fmt.Errorf("%w: the tenant changed while the VM was being created; try again", domain.ErrConflict)
}
