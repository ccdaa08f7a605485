package commands

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
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

// keyedMutex serialises, within this process, the commands that contend on
// one stream (a pool's allocations), so they queue instead of conflicting
// and retrying. It is an optimisation only: across processes the stream's
// expected version still decides, and the loser retries.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[uuid.UUID]*keyedLock
}

type keyedLock struct {
	sync.Mutex
	users int
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key uuid.UUID) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[uuid.UUID]*keyedLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

// poolCache keeps each pool's aggregate as this process last knew it, so
// an allocation, made while every other create of the pool waits, reads
// nothing at all when the pool has not changed since this process's own
// last allocation, and only the new events otherwise. Entries are read and
// advanced only under the pool's keyedMutex. A fresh entry may still be
// stale (a release, another process): the allocation's expected version
// then conflicts, the entry is marked stale, and the retry folds the new
// events in.
type poolCache struct {
	mu    sync.Mutex
	pools map[uuid.UUID]*cachedPool
}

type cachedPool struct {
	pool  *domain.IPPool
	fresh bool
}

// loadIPPoolLocked is LoadIPPool for a caller holding the pool's lock.
func (h *Handler) loadIPPoolLocked(ctx context.Context, id uuid.UUID) (*domain.IPPool, error) {
	h.poolCache.mu.Lock()
	c := h.poolCache.pools[id]
	h.poolCache.mu.Unlock()
	switch {
	case c != nil && c.fresh:
		return c.pool, nil
	case c == nil:
		p, err := h.LoadIPPool(ctx, id)
		if err != nil || !p.Exists() {
			return p, err
		}
		c = &cachedPool{pool: p}
	default:
		err := h.store.FoldStream(ctx, tenantdb.Tenant(domain.PlatformTenant), ipPoolStream(id), c.pool.Version, time.Time{}, func(e eventlog.Event) error {
			de, err := domain.DecodeEvent(e.Type, e.Data)
			if err != nil {
				return err
			}
			c.pool.Apply(de, e.RecordedAt)
			return nil
		})
		if err != nil {
			h.poolCache.mu.Lock()
			delete(h.poolCache.pools, id) // a partly applied fold is not the pool
			h.poolCache.mu.Unlock()
			return nil, err
		}
	}
	c.fresh = true
	h.poolCache.mu.Lock()
	if h.poolCache.pools == nil {
		h.poolCache.pools = map[uuid.UUID]*cachedPool{}
	}
	h.poolCache.pools[id] = c
	h.poolCache.mu.Unlock()
	return c.pool, nil
}

// staleCachedPool makes the next allocation from pool read its new events.
func (h *Handler) staleCachedPool(id uuid.UUID) {
	h.poolCache.mu.Lock()
	if c := h.poolCache.pools[id]; c != nil {
		c.fresh = false
	}
	h.poolCache.mu.Unlock()
}
