package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
)

// A VM's address from a pool: allocated in the transaction that records its
// create request, released in the one that records Proxmox's confirmation
// of its deletion. The pool's stream decides: its allocations are appended
// at the version the pool was loaded at, so of two processes that picked
// the same address one conflicts, reloads and picks the next.

// poolCluster is the cluster of the VM: cluster when given, else the
// named pool's (so its template is looked up where its address is).
func (h *Handler) poolCluster(ctx context.Context, pool, cluster uuid.UUID) (uuid.UUID, error) {
	if pool == uuid.Nil || cluster != uuid.Nil {
		return cluster, nil
	}
	p, err := h.LoadIPPool(ctx, pool)
	if err != nil {
		return uuid.Nil, err
	}
	if !p.Exists() {
		return uuid.Nil, noSuchPool()
	}
	return p.Config.ClusterID, nil
}

func noSuchPool() error {
	return &domain.ValidationError{Fields: map[string]string{"network.ip_pool_id": "no such address pool"}}
}

// vmPool is the pool a VM on cluster takes its address from: the one named
// (which must serve that cluster), else the cluster's default; uuid.Nil
// for none.
func (h *Handler) vmPool(ctx context.Context, pool, cluster uuid.UUID) (uuid.UUID, error) {
	if pool == uuid.Nil {
		// Creates that need the cluster's default pool at once share one
		// read of its stream (a burst of 50 read it 50 times). Sharing a
		// read already running is what reading it alone before the commit
		// always was: the cluster as it was a moment ago.
		v, err, _ := h.clusterReads.Do(cluster.String(), func() (any, error) {
			c, err := h.LoadCluster(context.WithoutCancel(ctx), cluster)
			if err != nil {
				return uuid.Nil, err
			}
			return c.DefaultPool, nil
		})
		if err != nil {
			return uuid.Nil, err
		}
		return v.(uuid.UUID), nil
	}
	p, err := h.LoadIPPool(ctx, pool)
	if err != nil {
		return uuid.Nil, err
	}
	if !p.Exists() {
		return uuid.Nil, noSuchPool()
	}
	if p.Config.ClusterID != cluster {
		return uuid.Nil, &domain.ValidationError{Fields: map[string]string{"network.ip_pool_id": fmt.Sprintf(
			"the pool serves cluster %s, not the VM's cluster %s", p.Config.ClusterID, cluster)}}
	}
	return pool, nil
}

// createVM records the create request events decided, with an address
// when the VM gets one. The VM and the usage it adds are decided here; the
// quota and the address are decided where the create commits, in a group
// with the other creates queued for its tenant, or its pool
// (create_group.go).
//
// tenant waits for the tenant, read meanwhile (CreateVM); its refusal comes
// before the pool's. poolOf answers the pool of a VM on a cluster, its read
// begun meanwhile when it could be (vmPoolAhead).
func (h *Handler) createVM(ctx context.Context, a Actor, o Options, tenant func() (*domain.Tenant, error), id uuid.UUID,
	poolOf func(cluster uuid.UUID) (uuid.UUID, error), events []domain.Event) (Result, error) {
	req := events[0].(*domain.VMCreateRequested)
	pool, err := poolOf(req.ClusterID)
	t, terr := tenant()
	if terr != nil {
		return Result{}, terr
	}
	if err != nil {
		return Result{}, err
	}
	if res, found, err := h.replayed(ctx, a, o); err != nil || found {
		return res, err
	}
	withNet := *req
	if pool != uuid.Nil {
		// The address is not known yet; the quota counts one either way.
		withNet.Network = &domain.VMNetwork{IPv4: "pending"}
	}
	// A VM whose id was just drawn (no Idempotency-Key) has no stream to
	// read: its append expects none, which a stream that exists would fail.
	v := &domain.VM{ID: id, TenantID: t.ID}
	if o.IdempotencyKey != "" {
		if v, err = h.LoadVM(ctx, t.ID, id); err != nil {
			return Result{}, err
		}
	}
	c, err := h.vmChangeOn(ctx, v, t, func(*domain.VM) ([]domain.Event, error) {
		return append([]domain.Event{&withNet}, events[1:]...), nil
	})
	if err != nil {
		return Result{}, err
	}
	if c.version != 0 {
		return h.vmExists(ctx, a, o)
	}
	if o.IfMatch != 0 {
		return Result{}, ErrPreconditionFailed
	}
	key := t.ID
	if pool != uuid.Nil {
		key = pool
	}
	res, err := h.submitCreate(key, &queuedCreate{ctx: ctx, a: a, o: o, c: c, req: &withNet, pool: pool, tenantVersion: t.Version})
	var conflict *eventstore.ConflictError
	if errors.As(err, &conflict) && conflict.Stream == c.stream {
		return h.vmExists(ctx, a, o)
	}
	return res, err
}

// vmExists answers a create whose VM exists: another create of the same
// VM got there first, and the same Idempotency-Key sent twice at once gets
// the first one's answer.
func (h *Handler) vmExists(ctx context.Context, a Actor, o Options) (Result, error) {
	if res, found, err := h.replayed(ctx, a, o); err != nil || found {
		return res, err
	}
	return Result{}, fmt.Errorf("%w: the VM exists", domain.ErrConflict)
}

// releaseAddress links to c the release of v's pool address when the
// change takes the VM to where it holds none (Proxmox confirmed it gone).
func (h *Handler) releaseAddress(ctx context.Context, v, after *domain.VM, c *change) error {
	if v.Network == nil || v.HeldIPv4() == 0 || after.HeldIPv4() != 0 {
		return nil
	}
	p, err := h.LoadIPPool(ctx, v.Network.PoolID)
	if err != nil {
		return err
	}
	if released := p.Release(v.ID); len(released) > 0 {
		c.linked = append(c.linked, change{tenant: domain.PlatformTenant, stream: ipPoolStream(p.ID), version: p.Version, events: released})
		c.retries = poolConflictRetries
	}
	return nil
}

// RecordGuestAddresses records the addresses the agent read from a VM's
// guest, when they differ from what the VM shows. It never changes the
// VM's status: the VM was running before its guest could say anything.
func (h *Handler) RecordGuestAddresses(ctx context.Context, tenant, vm uuid.UUID, addresses []string) (Result, error) {
	a := agentActor(uuid.Must(uuid.NewV7()), tenant)
	a.Metadata.UserAgent = "accountdb-agent"
	return h.execute(ctx, a, Options{}, func(ctx context.Context) (change, error) {
		return h.vmChange(ctx, tenant, vm, nil, func(v *domain.VM) ([]domain.Event, error) {
			return v.ReportGuestAddresses(addresses), nil
		})
	})
}
