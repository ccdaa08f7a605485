package commands

import (
	"context"
	"fmt"
	"sync"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
)

// appendLinked commits c and its linked changes in one transaction. The
// linked appends carry no command id (c's makes the whole idempotent) and
// expect exactly the version their decision was made at: that expectation
// is what keeps two commands from both taking the same pool address.
func (h *Handler) appendLinked(ctx context.Context, a Actor, o Options, app eventstore.Append, c change) (eventstore.AppendResult, error) {
	if h.tables == nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", app.Stream, ErrNoTables)
	}
	linked := make([]eventstore.Append, 0, len(c.linked))
	for _, l := range c.linked {
		la, err := h.newAppend(ctx, a, Options{}, l)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		la.CommandID, la.CorrelationID = uuid.Nil, app.CorrelationID
		if la.CausationID == uuid.Nil {
			la.CausationID = app.CausationID
		}
		linked = append(linked, la)
	}
	write := c.side
	if write == nil {
		write = func(context.Context, TxTables) error { return nil }
	}
	return h.tables.AppendLinked(ctx, app, linked, c.lockTenant, write)
}

// poolCache keeps each pool's aggregate as this process last knew it, so
// a group of allocations (create_group.go) reads nothing at all when no
// one else changed the pool since this process's last group. Entries are
// read and advanced only by the pool's committer goroutine, one group at a
// time. An entry may be stale (a release, another process): the group's
// pool append then conflicts, the entry is dropped, and the retry loads
// the pool again (from its latest snapshot).
type poolCache struct {
	mu    sync.Mutex
	pools map[uuid.UUID]*domain.IPPool
}

// loadIPPoolLocked is LoadIPPool for the pool's committer.
func (h *Handler) loadIPPoolLocked(ctx context.Context, id uuid.UUID) (*domain.IPPool, error) {
	h.poolCache.mu.Lock()
	p := h.poolCache.pools[id]
	h.poolCache.mu.Unlock()
	if p != nil {
		return p, nil
	}
	p, err := h.LoadIPPool(ctx, id)
	if err != nil || !p.Exists() {
		return p, err
	}
	h.poolCache.mu.Lock()
	if h.poolCache.pools == nil {
		h.poolCache.pools = map[uuid.UUID]*domain.IPPool{}
	}
	h.poolCache.pools[id] = p
	h.poolCache.mu.Unlock()
	return p, nil
}

// forgetCachedPool drops pool's entry: a group advanced it with
// allocations that did not commit, or its version conflicted.
func (h *Handler) forgetCachedPool(id uuid.UUID) {
	h.poolCache.mu.Lock()
	delete(h.poolCache.pools, id)
	h.poolCache.mu.Unlock()
}
