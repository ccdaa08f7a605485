package privacy

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/leader"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Retention of request metadata (docs/PRIVACY.md): once a tenant's policy
// has passed (domain.TenantPrivacyPolicySet, 90 days by default), the keys
// its requests' client IPs and user agents were sealed with are destroyed,
// a day at a time, so old events in the log and on the bus no longer reveal
// them, and the side tables that copied them (sessions' addresses and
// agents, API tokens' last address) forget them. One process does it at a
// time (a lease, like the backup scheduler's).

// RetentionLeaseName is the job's lock among the process's leases.
const RetentionLeaseName = "privacy:retention"

// DefaultRetentionInterval is how often the job runs.
const DefaultRetentionInterval = time.Hour

// Lease is the election (projections.Leases).
type Lease interface {
	TryAcquire(ctx context.Context, name string) (bool, error)
	Check(ctx context.Context, name string) error
	Release(name string)
}

// Policies says each tenant's retention in days (commands.Handler).
type Policies interface {
	RequestMetadataRetention(ctx context.Context, tenant uuid.UUID) (int, error)
}

// RetentionConfig is what the job needs; zero Interval and Now take the
// defaults, nil Log slog.Default.
type RetentionConfig struct {
	Pool     *pgxpool.Pool // the service role's
	Keys     *PGKeys
	Policies Policies
	Leases   Lease
	Interval time.Duration
	Now      func() time.Time
	Log      *slog.Logger
}

// Retention is the job.
type Retention struct{ cfg RetentionConfig }

// NewRetention returns the job.
func NewRetention(cfg RetentionConfig) *Retention {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultRetentionInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Retention{cfg: cfg}
}

// Run applies the policies every Interval while it holds the lease, until
// ctx ends.
func (r *Retention) Run(ctx context.Context) error {
	return leader.Every(ctx, r.cfg.Leases, RetentionLeaseName, r.cfg.Interval, r.cfg.Log, "privacy retention", func(ctx context.Context) error {
		_, err := r.RunOnce(ctx)
		return err
	})
}

// RetentionResult says what one round did.
type RetentionResult struct {
	Tenants       int
	KeysDestroyed int64
	RowsCleared   int64
}

// RunOnce applies every tenant's policy once.
func (r *Retention) RunOnce(ctx context.Context) (RetentionResult, error) {
	var res RetentionResult
	tenants, err := r.tenants(ctx)
	if err != nil {
		return res, err
	}
	now := r.cfg.Now().UTC()
	for _, t := range tenants {
		days, err := r.cfg.Policies.RequestMetadataRetention(ctx, t)
		if err != nil {
			return res, fmt.Errorf("privacy retention: tenant %s: %w", t, err)
		}
		cutoff := now.Add(-time.Duration(days) * 24 * time.Hour)
		n, err := r.cfg.Keys.DestroyMetadataKeys(ctx, t, cutoff)
		if err != nil {
			return res, err
		}
		cleared, err := clearRequestMetadata(ctx, r.cfg.Pool, t, cutoff)
		if err != nil {
			return res, err
		}
		res.Tenants++
		res.KeysDestroyed += n
		res.RowsCleared += cleared
	}
	if res.KeysDestroyed > 0 || res.RowsCleared > 0 {
		r.cfg.Log.Info("privacy retention", "tenants", res.Tenants, "keys_destroyed", res.KeysDestroyed, "rows_cleared", res.RowsCleared)
	}
	return res, nil
}

// tenants lists every tenant (through the platform administrators' read
// policy of the tenants read model) and the platform tenant.
func (r *Retention) tenants(ctx context.Context) ([]uuid.UUID, error) {
	out := []uuid.UUID{domain.PlatformTenant}
	err := tenantdb.ReadTx(ctx, r.cfg.Pool, tenantdb.Scope{PlatformAdmin: true}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT tenant_id FROM tenants ORDER BY tenant_id`)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		out = append(out, ids...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("privacy retention: tenants: %w", err)
	}
	return out, nil
}

// clearRequestMetadata forgets the addresses and agents side tables copied
// from requests older than cutoff.
func clearRequestMetadata(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID, cutoff time.Time) (int64, error) {
	var n int64
	err := tenantdb.InTx(ctx, pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		for _, q := range []string{
			`UPDATE sessions SET ip = '', user_agent = '' WHERE tenant_id = $1 AND last_seen_at < $2 AND (ip <> '' OR user_agent <> '')`,
			`UPDATE api_tokens SET last_used_ip = NULL WHERE tenant_id = $1 AND last_used_at < $2 AND last_used_ip IS NOT NULL`,
		} {
			tag, err := tx.Exec(ctx, q, tenant, cutoff)
			if err != nil {
				return err
			}
			n += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("privacy retention: clear tenant %s: %w", tenant, err)
	}
	return n, nil
}
