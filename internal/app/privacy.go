package app

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/privacy"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/accountdb/accountdb/vault"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Privacy is a process's crypto-shredding (docs/PRIVACY.md): the subjects'
// keys, read on a small pool of their own (event-store folds reveal events
// while they hold a connection of the main pool, so key reads must never
// wait for one), the sealer every append goes through and the revealer
// every reader does.
type Privacy struct {
	Keys     *privacy.PGKeys
	Sealer   *privacy.Sealer
	Revealer *privacy.Revealer
	pool     *pgxpool.Pool
}

// keyPoolSize bounds the key pool: keys are cached, so it serves the first
// reads of a subject's keys and their creation only.
const keyPoolSize = 2

// OpenPrivacy connects the key store at appURL (the service role's URL),
// sealing keys with v. Without a vault there is no secrets key to seal keys
// with: nil, and personal data is recorded as it is (tools and tests only;
// serve and dev always have one).
func OpenPrivacy(ctx context.Context, appURL string, v *vault.Vault) (*Privacy, error) {
	if v == nil {
		return nil, nil
	}
	pool, err := tenantdb.Open(ctx, appURL, tenantdb.PoolOptions{MaxConns: keyPoolSize, ApplicationName: "accountdb-keys"})
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	keys := privacy.NewPGKeys(pool, v, 0)
	return &Privacy{Keys: keys, Sealer: privacy.NewSealer(keys), Revealer: privacy.NewRevealer(keys), pool: pool}, nil
}

// Close closes the key pool. A nil Privacy has nothing to close.
func (p *Privacy) Close() {
	if p != nil {
		p.pool.Close()
	}
}

// Store is s reading through p's revealer (s itself for a nil p).
func (p *Privacy) Store(s *eventstore.Store) *eventstore.Store {
	if p == nil {
		return s
	}
	return s.WithRevealer(p.Revealer)
}

// Commands has h seal its appends with p and forget erased subjects' keys
// at once (h itself for a nil p).
func (p *Privacy) Commands(h *commands.Handler) *commands.Handler {
	if p == nil {
		return h
	}
	return h.WithSealer(p.Sealer).WithKeyForgetter(p.Keys)
}

// EventRevealer is p's revealer as the readers' port, nil (not a typed nil)
// without p.
func (p *Privacy) EventRevealer() eventstore.Revealer {
	if p == nil {
		return nil
	}
	return p.Revealer
}

// CachingRevealer is p's revealer for the readers that cache what they
// revealed (the live feed, webhooks), nil without p.
func (p *Privacy) CachingRevealer() CachingRevealer {
	if p == nil {
		return nil
	}
	return p.Revealer
}

// CachingRevealer is feed.Revealer and webhooks.Revealer.
type CachingRevealer interface {
	eventstore.Revealer
	Generation() uint64
}
