package privacy

import (
	"context"
	"crypto/rand"
	"sync"

	"github.com/google/uuid"
)

// memKeys is Keys in memory, for the sealer's and revealer's unit tests.
type memKeys struct {
	mu     sync.Mutex
	keys   map[cacheKey][]byte
	erased map[[2]uuid.UUID]bool
	gen    uint64
}

func newMemKeys() *memKeys {
	return &memKeys{keys: map[cacheKey][]byte{}, erased: map[[2]uuid.UUID]bool{}}
}

func (m *memKeys) Key(_ context.Context, tenant uuid.UUID, ref KeyRef, create bool) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.keys[cacheKey{tenant, ref}]; ok {
		return k, nil
	}
	if !create {
		return nil, ErrNoKey
	}
	if m.erased[[2]uuid.UUID{tenant, ref.Subject}] {
		return nil, ErrErased
	}
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	m.keys[cacheKey{tenant, ref}] = k
	return k, nil
}

// erase destroys the subject's keys, as EraseSubjectTx does.
func (m *memKeys) erase(tenant, subject uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.keys {
		if k.tenant == tenant && k.ref.Subject == subject {
			delete(m.keys, k)
		}
	}
	m.erased[[2]uuid.UUID{tenant, subject}] = true
}

func (m *memKeys) Forget(uuid.UUID, uuid.UUID) { m.gen++ }
func (m *memKeys) Generation() uint64          { return m.gen }
