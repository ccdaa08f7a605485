package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
)

// commitCreates commits, in one transaction, the creates of items that fit
// their tenant's quota (and, when they take an address, the pool), and
// answers each: an error in its outcome is that create's refusal; the
// error returned is the group's, when nothing committed. Every item has
// the same pool. A conflict on the pool's stream (a release, another
// process) reloads the pool and decides again.
//
// The group is first decided on its tenants as this process's last group
// left them (create_known.go), in one round trip; when they are not known,
// not as expected, or a create would be refused on them, it is decided on
// the state read under the tenants' locks.
func (h *Handler) commitCreates(ctx context.Context, items []*queuedCreate) ([]createOutcome, error) {
	pool := items[0].pool
	onKnown := true
	for attempt := 0; ; attempt++ {
		outs, err := h.tryCreates(ctx, items, onKnown)
		if onKnown && errors.Is(err, ErrGroupNotAsExpected) {
			onKnown = false
			continue
		}
		var conflict *eventstore.ConflictError
		if errors.As(err, &conflict) && pool != uuid.Nil && conflict.Stream == ipPoolStream(pool) && attempt < poolConflictRetries {
			continue
		}
		return outs, err
	}
}

// tryCreates commits items once; onKnown decides them on their tenants'
// known state, when there is one (ErrGroupNotAsExpected: decide again).
func (h *Handler) tryCreates(ctx context.Context, items []*queuedCreate, onKnown bool) ([]createOutcome, error) {
	if h.tables == nil {
		return nil, ErrNoTables
	}
	var tenants []uuid.UUID
	for _, q := range items {
		if !slices.Contains(tenants, q.c.tenant) {
			tenants = append(tenants, q.c.tenant)
		}
	}
	pool := items[0].pool
	// The pool is read before the transaction, on a connection of its
	// own: inside, the group must need no second one, or committers of many
	// keys could exhaust the connection pool waiting for one. Allocations
	// advance the cached pool; it is dropped unless they commit.
	var (
		p           *domain.IPPool
		poolVersion int64
	)
	if pool != uuid.Nil {
		var err error
		if p, err = h.loadIPPoolLocked(ctx, pool); err != nil {
			return nil, err
		}
		if !p.Exists() {
			return nil, noSuchPool()
		}
		poolVersion = p.Version
	}
	expected, known := h.known.expect(tenants, items)
	known = known && onKnown
	var (
		outs      []createOutcome
		admitted  []int // the items appended, by index: results[k] is items[admitted[k]]'s
		decidedOn map[uuid.UUID]TenantState
		added     map[uuid.UUID]Usage // by the creates admitted
	)
	decide := func(ctx context.Context, state map[uuid.UUID]TenantState) (Group, error) {
		outs, admitted, decidedOn, added = make([]createOutcome, len(items)), nil, state, map[uuid.UUID]Usage{}
		var (
			vmApps, poolApps []eventstore.Append
			quotas           = map[uuid.UUID]domain.Quota{}
		)
		for i, q := range items {
			t := q.c.tenant
			if q.tenantVersion != state[t].Version {
				// Decided on a tenant that has changed since (a cached
				// one, or one changed meanwhile): decide it again.
				h.tenants.forget(t)
				outs[i].err = errStaleTenant
				continue
			}
			if err := overQuota(state[t].Usage.Plus(added[t]), q.c.delta, q.c.quota); err != nil {
				outs[i].err = err
				continue
			}
			app, err := h.newAppend(ctx, q.a, q.o, q.c)
			if err != nil {
				outs[i].err = err
				continue
			}
			if p != nil {
				alloc, err := h.allocate(ctx, p, q, app, poolVersion+int64(len(poolApps)))
				if err != nil {
					outs[i].err = err
					continue
				}
				poolApps = append(poolApps, alloc)
			}
			vmApps = append(vmApps, app)
			admitted = append(admitted, i)
			added[t], quotas[t] = added[t].Plus(q.c.delta), q.c.quota
		}
		if known && len(admitted) < len(items) {
			// A refusal is decided on the state read under the lock,
			// never on a state only expected.
			return Group{}, ErrGroupNotAsExpected
		}
		g := Group{Appends: append(vmApps, poolApps...)}
		for _, t := range tenants {
			if d, ok := added[t]; ok && d != (Usage{}) {
				g.Usage = append(g.Usage, UsageChange{Tenant: t, Delta: d, Quota: quotas[t]})
			}
		}
		return g, nil
	}
	var (
		results []eventstore.AppendResult
		err     error
	)
	if known {
		results, err = h.tables.AppendGroupExpecting(ctx, expected, decide)
	} else {
		results, err = h.tables.AppendGroup(ctx, tenants, decide)
	}
	committed := err == nil && !slices.ContainsFunc(results, func(r eventstore.AppendResult) bool { return r.Replayed })
	if pool != uuid.Nil && !committed {
		h.forgetCachedPool(pool)
	}
	if committed {
		h.known.committed(decidedOn, added)
	} else {
		h.known.forget(tenants)
	}
	if err != nil {
		return nil, err
	}
	if !committed {
		// A replay: alone, it is this create's first answer; in a group,
		// nothing committed and each create is tried alone.
		if len(items) == 1 && len(results) == 1 {
			r := results[0]
			return []createOutcome{{res: Result{ID: r.Stream.ID, StreamVersion: r.LastVersion, Position: r.LastPosition, Replayed: true}}}, nil
		}
		return nil, errors.New("commands: a create of the group was a replay")
	}
	// Every create of the group answers the group's last position as its
	// consistency token: the pools' allocations are appended after all the
	// VMs' events, and a read that waits for a VM's own position could see
	// the VM but not its address.
	var last int64
	for _, r := range results {
		last = max(last, r.LastPosition)
	}
	for k, i := range admitted {
		r := results[k]
		outs[i].res = Result{ID: r.Stream.ID, StreamVersion: r.LastVersion, Position: last}
	}
	return outs, nil
}

// allocate gives q's VM the next address of p, sets it on q's request
// (app's events are marshalled when written, after this) and returns the
// pool's append at version, which the previous allocations of the group
// reach. The append carries no command id (the VM's makes the whole
// idempotent) and the request's actor and correlation, as its own event.
func (h *Handler) allocate(ctx context.Context, p *domain.IPPool, q *queuedCreate, app eventstore.Append, version int64) (eventstore.Append, error) {
	vm := q.c.stream.ID
	events, alloc, err := p.Allocate(vm, q.c.tenant)
	if err != nil {
		return eventstore.Append{}, err
	}
	if len(events) == 0 {
		return eventstore.Append{}, fmt.Errorf("%w: the VM holds an address of the pool already", domain.ErrConflict)
	}
	n := p.Network(alloc)
	q.req.Network = &n
	for _, e := range events {
		p.Apply(e, h.now())
	}
	l := change{tenant: domain.PlatformTenant, stream: ipPoolStream(p.ID), version: version, events: events}
	la, err := h.newAppend(ctx, q.a, Options{}, l)
	if err != nil {
		return eventstore.Append{}, err
	}
	la.CommandID, la.CorrelationID, la.CausationID = uuid.Nil, app.CorrelationID, app.CausationID
	return la, nil
}
