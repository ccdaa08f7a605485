package privacy

import (
	"sync"
	"time"

	"github.com/google/uuid"
)

// DefaultCacheTTL is how long a key (or its absence) is kept in memory. It is
// also how long, at most, a replica that did not perform an erasure may
// still show what the erased key opened: docs/PRIVACY.md.
const DefaultCacheTTL = 30 * time.Second

// maxCached bounds the cache; past it the cache starts afresh.
const maxCached = 50_000

type cacheKey struct {
	tenant uuid.UUID
	ref    KeyRef
}

type cached struct {
	key     []byte // nil: known not to exist
	expires time.Time
}

// keyCache keeps keys briefly, so that a busy subject does not cost a query
// per event, and forgets a subject's keys at once when this process erases it.
type keyCache struct {
	mu  sync.Mutex
	ttl time.Duration
	now func() time.Time
	m   map[cacheKey]cached
}

func newKeyCache(ttl time.Duration) *keyCache {
	return &keyCache{ttl: ttl, now: time.Now, m: map[cacheKey]cached{}}
}

func (c *keyCache) get(tenant uuid.UUID, ref KeyRef) (cached, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[cacheKey{tenant, ref}]
	if !ok || c.now().After(e.expires) {
		return cached{}, false
	}
	return e, true
}

func (c *keyCache) put(tenant uuid.UUID, ref KeyRef, key []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCached {
		clear(c.m)
	}
	c.m[cacheKey{tenant, ref}] = cached{key: key, expires: c.now().Add(c.ttl)}
}

// forgetSubject drops every cached key of subject.
func (c *keyCache) forgetSubject(tenant, subject uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if k.tenant == tenant && k.ref.Subject == subject {
			delete(c.m, k)
		}
	}
}

// forgetAll drops everything (after retention destroyed keys).
func (c *keyCache) forgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}
