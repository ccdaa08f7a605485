package commands

import (
	"context"
	"sync"

	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
)

// Creates commit in groups (group commit). The quota must hold under
// concurrency, so the creates of a tenant are serialised on the tenant's
// lock; each used to hold it across its own commit, so 50 creates at once
// waited for up to 49 commits, and one pool's allocations the same way.
// Now creates queue in this process per key (the pool, when the VM takes an
// address from one; the tenant otherwise), and one goroutine per key
// commits them: while one transaction commits, the next creates queue, and
// the next transaction takes the whole queue. The quota (and the pool) are
// decided inside that transaction, under the lock of every tenant in it, on
// the usage read there, in queue order: creates that do not fit are left
// out and refused (quota_exceeded, pool_exhausted), the others commit
// together with one usage update per tenant. One lock wait and one commit
// serve the queue, and each create still decides exactly as if alone.

// maxCreateGroup bounds one transaction: long ones hold the tenants' locks,
// and the commit watermark, for longer.
const maxCreateGroup = 64

type createGroups struct {
	mu     sync.Mutex
	queues map[uuid.UUID]*createQueue // keys with a committer running
}

type createQueue struct{ waiting []*queuedCreate }

// queuedCreate is one create, decided but for its quota and address.
type queuedCreate struct {
	ctx context.Context
	a   Actor
	o   Options
	c   change                    // the VM's stream and its create request, with delta and quota
	req *domain.VMCreateRequested // in c.events: the allocation fills its network
	// tenantVersion is the version of the tenant the create was decided on
	// (its quota, that it accepts commands); the group checks it is the
	// tenant's latest (tenant_cache.go).
	tenantVersion int64
	pool          uuid.UUID // uuid.Nil: no address
	done          chan createOutcome
}

type createOutcome struct {
	res Result
	err error
}

// submitCreate queues q under key and waits for its outcome.
func (h *Handler) submitCreate(key uuid.UUID, q *queuedCreate) (Result, error) {
	q.done = make(chan createOutcome, 1)
	g := &h.creates
	g.mu.Lock()
	if g.queues == nil {
		g.queues = map[uuid.UUID]*createQueue{}
	}
	cq, running := g.queues[key]
	if !running {
		cq = &createQueue{}
		g.queues[key] = cq
	}
	cq.waiting = append(cq.waiting, q)
	g.mu.Unlock()
	if !running {
		go h.commitQueue(key, cq)
	}
	// Not abandoned when q.ctx ends: once taken into a group, the create
	// commits or not with it, and its caller must hear which.
	out := <-q.done
	return out.res, out.err
}

// commitQueue commits key's queue, a group at a time, until it is empty.
func (h *Handler) commitQueue(key uuid.UUID, cq *createQueue) {
	g := &h.creates
	for {
		g.mu.Lock()
		n := min(len(cq.waiting), maxCreateGroup)
		group := cq.waiting[:n:n]
		cq.waiting = cq.waiting[n:]
		if n == 0 {
			delete(g.queues, key)
		}
		g.mu.Unlock()
		if n == 0 {
			return
		}
		h.commitGroup(group)
	}
}

// commitGroup answers every create of group. When the group fails as a
// whole (a create's VM exists already, a replayed command, a database
// error), each create is tried alone, so that it gets its own answer.
func (h *Handler) commitGroup(group []*queuedCreate) {
	live := group[:0:0]
	for _, q := range group {
		if err := q.ctx.Err(); err != nil {
			q.done <- createOutcome{err: err}
			continue
		}
		live = append(live, q)
	}
	if len(live) == 0 {
		return
	}
	outs, err := h.commitCreates(context.WithoutCancel(live[0].ctx), live)
	if err != nil && len(live) > 1 {
		for _, q := range live {
			one, err := h.commitCreates(context.WithoutCancel(q.ctx), []*queuedCreate{q})
			q.done <- answer(one, err)
		}
		return
	}
	for i, q := range live {
		if err != nil {
			q.done <- createOutcome{err: err}
			continue
		}
		q.done <- outs[i]
	}
}

func answer(outs []createOutcome, err error) createOutcome {
	if err != nil {
		return createOutcome{err: err}
	}
	return outs[0]
}
