package commands

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
)

// tokenUsage collects API token uses in memory: each request only notes its
// token's latest use, and FlushAPITokenUsage writes them all, one statement
// per tenant, every APITokenUsageInterval (and when a token list is read, and
// at shutdown). Automation that calls the API in a loop thus costs no write
// per request. A crash loses at most one interval of last-used times, never
// a first use (that is an event, written at once).
type tokenUsage struct {
	mu      sync.Mutex
	pending map[uuid.UUID]map[uuid.UUID]APITokenUse // tenant → token → latest use
}

// APITokenUsageInterval is how often noted uses are written.
const APITokenUsageInterval = 15 * time.Second

func (u *tokenUsage) note(tenant uuid.UUID, use APITokenUse) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.pending == nil {
		u.pending = map[uuid.UUID]map[uuid.UUID]APITokenUse{}
	}
	m := u.pending[tenant]
	if m == nil {
		m = map[uuid.UUID]APITokenUse{}
		u.pending[tenant] = m
	}
	if prev, ok := m[use.ID]; !ok || use.At.After(prev.At) {
		m[use.ID] = use
	}
}

func (u *tokenUsage) take() map[uuid.UUID]map[uuid.UUID]APITokenUse {
	u.mu.Lock()
	defer u.mu.Unlock()
	p := u.pending
	u.pending = nil
	return p
}

// FlushAPITokenUsage writes the noted uses. Uses that could not be written
// are noted again for the next flush.
func (h *Handler) FlushAPITokenUsage(ctx context.Context) error {
	if h.tables == nil {
		return ErrNoTables
	}
	var errs []error
	for tenant, m := range h.usage.take() {
		uses := make([]APITokenUse, 0, len(m))
		for _, use := range m {
			uses = append(uses, use)
		}
		if err := h.tables.APITokens().Touch(ctx, tenant, uses); err != nil {
			errs = append(errs, err)
			for _, use := range uses {
				h.usage.note(tenant, use)
			}
		}
	}
	return errors.Join(errs...)
}

// RunAPITokenUsage flushes noted uses every interval until ctx ends, then
// once more. Failures are logged: last-used times are informative, and
// losing some must not stop the service.
func (h *Handler) RunAPITokenUsage(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = APITokenUsageInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := h.FlushAPITokenUsage(final); err != nil {
				h.log.Warn("writing API token uses at shutdown", "error", err)
			}
			return nil
		case <-t.C:
			if err := h.FlushAPITokenUsage(ctx); err != nil && ctx.Err() == nil {
				h.log.Warn("writing API token uses", "error", err)
			}
		}
	}
}
