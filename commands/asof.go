package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
)

// Time travel: an aggregate as it stood at an instant, rebuilt from the
// events recorded at or before it. recorded_at is the appending transaction's
// start, so it need not grow with the stream version; the replay stops at the
// first event past the instant, so the state is always one the aggregate
// really went through (a prefix of its stream).

// ReplayUntil applies to agg the prefix of stream recorded at or before until
// (zero: the whole stream), read under sc, calling each (when non-nil) with
// every event applied. It returns the version reached. With agg nil (a stream
// type without an aggregate) events are only walked, not decoded.
//
// It replays every event, never from a snapshot: it serves the replay
// timeline (`accountdb replay`), which needs them all. Loads and as-of
// reads start from snapshots instead (Handler.replayWithSnapshots).
func ReplayUntil(ctx context.Context, store EventStore, sc tenantdb.Scope, stream eventlog.StreamID,
	until time.Time, agg domain.Aggregate, each func(eventlog.Event, domain.Event)) (int64, error) {
	var version int64
	err := store.FoldStream(ctx, sc, stream, 0, until, func(e eventlog.Event) error {
		var de domain.Event
		if agg != nil {
			var err error
			if de, err = domain.DecodeEvent(e.Type, e.Data); err != nil {
				return fmt.Errorf("replay %s: %w", stream, err)
			}
			agg.Apply(de, e.RecordedAt)
		}
		version = e.StreamVersion
		if each != nil {
			each(e, de)
		}
		return nil
	})
	return version, err
}

// loadAsOf rebuilds one aggregate of tenant as of until; ErrNotFound when it
// did not exist yet.
func (h *Handler) loadAsOf(ctx context.Context, tenant uuid.UUID, stream eventlog.StreamID, until time.Time, agg domain.Aggregate) error {
	if _, err := h.replayWithSnapshots(ctx, tenantdb.Tenant(tenant), stream, until, agg); err != nil {
		return err
	}
	if !agg.Exists() {
		return domain.ErrNotFound
	}
	return nil
}

// LoadVMAsOf is a VM of tenant as it stood at until.
func (h *Handler) LoadVMAsOf(ctx context.Context, tenant, id uuid.UUID, until time.Time) (*domain.VM, error) {
	v := &domain.VM{ID: id, TenantID: tenant}
	return v, h.loadAsOf(ctx, tenant, vmStream(id), until, v)
}

// LoadUserAsOf is a user of tenant as it stood at until.
func (h *Handler) LoadUserAsOf(ctx context.Context, tenant, id uuid.UUID, until time.Time) (*domain.User, error) {
	u := &domain.User{ID: id, TenantID: tenant}
	return u, h.loadAsOf(ctx, tenant, userStream(id), until, u)
}

// LoadTenantAsOf is a tenant as it stood at until.
func (h *Handler) LoadTenantAsOf(ctx context.Context, id uuid.UUID, until time.Time) (*domain.Tenant, error) {
	t := &domain.Tenant{ID: id}
	return t, h.loadAsOf(ctx, id, tenantStream(id), until, t)
}

// Usage is what a tenant's VMs have allocated, as the quota counts it, or a
// change in it.
type Usage struct{ VMs, Cores, MemoryMB, DiskGB, IPv4 int }

// TenantUsageAsOf is what tenant's VMs had allocated at until: every VM
// stream of the tenant replayed, in one pass over the tenant's VM events in
// log order, up to the instant (each stream to its prefix, as above).
func (h *Handler) TenantUsageAsOf(ctx context.Context, tenant uuid.UUID, until time.Time) (Usage, error) {
	type replay struct {
		vm    *domain.VM
		ended bool
	}
	vms := map[uuid.UUID]*replay{}
	f := eventstore.AuditFilter{TenantID: tenant, StreamType: domain.StreamVM, Until: until}
	err := h.store.AuditEach(ctx, tenantdb.Tenant(tenant), f, func(e eventlog.Event) error {
		r := vms[e.Stream.ID]
		if r == nil {
			r = &replay{vm: &domain.VM{ID: e.Stream.ID, TenantID: tenant}}
			vms[e.Stream.ID] = r
		}
		if r.ended || e.StreamVersion != r.vm.Version+1 {
			r.ended = true
			return nil
		}
		if err := h.store.Upcast(&e); err != nil {
			return err
		}
		de, err := domain.DecodeEvent(e.Type, e.Data)
		if err != nil {
			return fmt.Errorf("replay %s: %w", e.Stream, err)
		}
		r.vm.Apply(de, e.RecordedAt)
		return nil
	})
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	for _, r := range vms {
		a := r.vm.Allocated()
		if a != (domain.VMSpec{}) {
			u.VMs++
		}
		u.Cores, u.MemoryMB, u.DiskGB = u.Cores+a.Cores, u.MemoryMB+a.MemoryMB, u.DiskGB+a.DiskGB
		u.IPv4 += r.vm.HeldIPv4()
	}
	return u, nil
}
