package commands

import (
	"context"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
)

// IP address pools are platform resources: their streams, and the cluster
// streams that list them, live in the platform tenant.

func ipPoolStream(id uuid.UUID) eventlog.StreamID {
	return eventlog.StreamID{Type: domain.StreamIPPool, ID: id}
}

// poolConflictRetries bounds load-decide-append retries of a command that
// appends to a pool or a cluster other commands append to as well: each
// conflict means another one made progress, and in one process the pool's
// lock (keyedMutex) leaves only other processes to conflict with.
const poolConflictRetries = 50

// LoadIPPool rebuilds a pool from its events.
func (h *Handler) LoadIPPool(ctx context.Context, id uuid.UUID) (*domain.IPPool, error) {
	p := &domain.IPPool{ID: id}
	if _, err := h.loadInto(ctx, domain.PlatformTenant, ipPoolStream(id), p); err != nil {
		return nil, err
	}
	return p, nil
}

// LoadCluster rebuilds a cluster from its events.
func (h *Handler) LoadCluster(ctx context.Context, id uuid.UUID) (*domain.Cluster, error) {
	c := &domain.Cluster{ID: id}
	if _, err := h.loadInto(ctx, domain.PlatformTenant, clusterStream(id), c); err != nil {
		return nil, err
	}
	return c, nil
}

// CreateIPPool records a pool and, in the same transaction, its place on
// its cluster, where overlap on a bridge and the one default pool are
// decided at the cluster's version.
func (h *Handler) CreateIPPool(ctx context.Context, a Actor, o Options, in domain.IPPoolInput) (Result, error) {
	if h.tables == nil {
		return Result{}, ErrNoTables
	}
	id := uuid.Must(uuid.NewV7())
	if o.IdempotencyKey != "" {
		id = commandID(a, "ip_pool:"+o.IdempotencyKey)
	}
	// Validate on its own first: bad input is refused before anything is read.
	if _, err := domain.NewIPPoolConfig(in); err != nil {
		return Result{}, err
	}
	return h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		var c *domain.Cluster
		if in.ClusterID != uuid.Nil {
			var err error
			if c, err = h.LoadCluster(ctx, in.ClusterID); err != nil {
				return change{}, err
			}
		} else {
			c = &domain.Cluster{}
		}
		poolEvents, clusterEvents, err := domain.CreateIPPool(c, id, in)
		if err != nil {
			return change{}, err
		}
		return change{tenant: domain.PlatformTenant, stream: ipPoolStream(id), events: poolEvents, retries: poolConflictRetries,
			linked: []change{{tenant: domain.PlatformTenant, stream: clusterStream(c.ID), version: c.Version, events: clusterEvents}}}, nil
	})
}
