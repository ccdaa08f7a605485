package commands

import (
	"sync"

	"github.com/google/uuid"
)

// knownTenants is each tenant's usage and version as this process's last
// create group committed them, so that the next group can be decided
// before its transaction and sent with its commit in one round trip
// (Tables.AppendGroupExpecting) instead of reading them under the tenant's
// lock first: a group used to take three round trips, and under load a
// create's POST waited for each (issue 16). An entry is stale when
// anything else changed the tenant's usage or its stream since (a delete,
// a resize, another process's creates, a quota change); the group then
// finds the tenant not as expected, writes nothing, and is decided again
// on the state read under the lock, which is kept for the next group.
type knownTenants struct {
	mu     sync.Mutex
	states map[uuid.UUID]TenantState
}

// knownTenantsMax bounds the map; past it, it starts over (a tenant's next
// group reads its state, nothing else).
const knownTenantsMax = 10_000

// expect is the state of every tenant in tenants, when all are known and
// each create of items was decided on that version of its tenant.
func (k *knownTenants) expect(tenants []uuid.UUID, items []*queuedCreate) (map[uuid.UUID]TenantState, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	expected := make(map[uuid.UUID]TenantState, len(tenants))
	for _, t := range tenants {
		st, ok := k.states[t]
		if !ok {
			return nil, false
		}
		expected[t] = st
	}
	for _, q := range items {
		if expected[q.c.tenant].Version != q.tenantVersion {
			return nil, false
		}
	}
	return expected, true
}

// committed notes each tenant's state after a group committed: the state
// it was decided on plus what it added.
func (k *knownTenants) committed(decidedOn map[uuid.UUID]TenantState, added map[uuid.UUID]Usage) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.states == nil || len(k.states) >= knownTenantsMax {
		k.states = map[uuid.UUID]TenantState{}
	}
	for t, st := range decidedOn {
		k.states[t] = TenantState{Version: st.Version, Usage: st.Usage.Plus(added[t])}
	}
}

// forget drops tenants' states: their group did not commit, or committed
// on a state not known.
func (k *knownTenants) forget(tenants []uuid.UUID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, t := range tenants {
		delete(k.states, t)
	}
}
