package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/google/uuid"
)

// slotRetryAfter is the Retry-After of a refused long request: a slot
// frees when another export or stream of the caller ends, which the server
// cannot foresee; a few seconds keeps retries from spinning.
const slotRetryAfter = 5

// SlotStore holds the slots of long requests for every replica (api/pglimits
// keeps them in PostgreSQL), so that a cap holds across replicas. Acquire
// takes a slot of kind ("exports", "streams") for user and tenant unless
// either already holds its cap; refused is then "user" or "tenant".
// release gives the slot back.
type SlotStore interface {
	Acquire(ctx context.Context, kind string, user, tenant uuid.UUID, perUser, perTenant int) (release func(), refused string, err error)
}

// slots caps the concurrent long requests (exports, event streams) of each
// user and of each tenant: each holds its slot, and nothing else of the
// server bounds it, for as long as its client keeps it open.
type slots struct {
	kind               string // "exports", "streams": SlotStore's kind
	what               string // "exports", "event streams": for the problem's detail
	perUser, perTenant int
	store              SlotStore // nil: counted in this process
	// userKey names what the first key counts in a refusal: "user", or
	// "VM" for the per-VM console cap (whose first key is the VM's id).
	userKey string

	mu      sync.Mutex
	users   map[uuid.UUID]int
	tenants map[uuid.UUID]int
}

func newSlots(kind, what string, perUser, perTenant int, store SlotStore) *slots {
	return &slots{kind: kind, what: what, perUser: perUser, perTenant: perTenant, store: store, userKey: "user",
		users: map[uuid.UUID]int{}, tenants: map[uuid.UUID]int{}}
}

// acquire takes a slot of p's user and tenant, or answers 429 with
// Retry-After and reports false. release must be called once the request
// ends.
func (s *slots) acquire(w http.ResponseWriter, r *http.Request, p *Principal) (release func(), ok bool) {
	return s.acquireFor(w, r, p.UserID, p.TenantID)
}

// acquireFor takes a slot of key (a user, or a VM) and tenant.
func (s *slots) acquireFor(w http.ResponseWriter, r *http.Request, key, tenant uuid.UUID) (release func(), ok bool) {
	if s.store != nil {
		return s.acquireShared(w, r, key, tenant)
	}
	s.mu.Lock()
	var refused string
	switch {
	case s.users[key] >= s.perUser:
		refused = fmt.Sprintf("at most %d concurrent %s per %s", s.perUser, s.what, s.userKey)
	case s.tenants[tenant] >= s.perTenant:
		refused = fmt.Sprintf("at most %d concurrent %s per tenant", s.perTenant, s.what)
	default:
		s.users[key]++
		s.tenants[tenant]++
	}
	s.mu.Unlock()
	if refused != "" {
		s.refuse(w, r, refused)
		return nil, false
	}
	var once sync.Once
	return func() { once.Do(func() { s.release(key, tenant) }) }, true
}

func (s *slots) refuse(w http.ResponseWriter, r *http.Request, refused string) {
	w.Header().Set("Retry-After", strconv.Itoa(slotRetryAfter))
	pr := RateLimited()
	pr.Detail = refused + "; retry once one has ended"
	WriteProblem(w, r, pr)
}

// acquireShared takes the slot in the store every replica shares; a store
// that cannot be reached refuses with 503 rather than let a request through
// uncounted.
func (s *slots) acquireShared(w http.ResponseWriter, r *http.Request, key, tenant uuid.UUID) (func(), bool) {
	release, refused, err := s.store.Acquire(r.Context(), s.kind, key, tenant, s.perUser, s.perTenant)
	switch {
	case err != nil:
		slog.Default().WarnContext(r.Context(), "request slots unavailable", "kind", s.kind, "err", err)
		WriteProblem(w, r, Unavailable())
		return nil, false
	case refused == "user":
		s.refuse(w, r, fmt.Sprintf("at most %d concurrent %s per %s", s.perUser, s.what, s.userKey))
		return nil, false
	case refused != "":
		s.refuse(w, r, fmt.Sprintf("at most %d concurrent %s per tenant", s.perTenant, s.what))
		return nil, false
	}
	var once sync.Once
	return func() { once.Do(release) }, true
}

func (s *slots) release(user, tenant uuid.UUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[user]--; s.users[user] <= 0 {
		delete(s.users, user)
	}
	if s.tenants[tenant]--; s.tenants[tenant] <= 0 {
		delete(s.tenants, tenant)
	}
}
