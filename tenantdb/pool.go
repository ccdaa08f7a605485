package tenantdb

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// PoolOptions tunes a connection pool; zero values take the defaults.
type PoolOptions struct {
	MaxConns int32
	// MinConns are opened in the background at once and kept through idle
	// periods (pgxpool closes an idle connection above it after 30 minutes),
	// so a burst of requests finds backends that have already loaded their
	// catalog caches and prepared their statements. A backend's first
	// requests cost several times its later ones (docs/BENCHMARKS.md,
	// "Issue 16, seventh session").
	MinConns        int32
	ApplicationName string
}

// lifetimeJitter spreads the recycling of a pool's connections (pgxpool
// closes each after an hour): connections opened together by one burst
// would otherwise all be replaced, cold, at the same moment.
const lifetimeJitter = 15 * time.Minute

// Open connects a pool with the settings every AccountDB connection needs: a
// stuck transaction is killed after idle_in_transaction_session_timeout because
// it holds a connection and its locks for nothing (and, were it an append, the
// log's watermark that readers wait on).
func Open(ctx context.Context, databaseURL string, opts PoolOptions) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(withoutTLSOnLoopback(databaseURL))
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", redact(err))
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	cfg.MinConns = min(opts.MinConns, cfg.MaxConns)
	cfg.MaxConnLifetimeJitter = lifetimeJitter
	rp := cfg.ConnConfig.RuntimeParams
	rp["idle_in_transaction_session_timeout"] = "15s"
	rp["statement_timeout"] = "60s"
	if opts.ApplicationName != "" {
		rp["application_name"] = opts.ApplicationName
	}
	cfg.AfterConnect = RegisterUUIDAfterConnect
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return pool, nil
}

// AppURL derives the service role's URL from the administrator's: same host,
// port and database, user accountdb_app and the given password (empty under
// trust or peer authentication).
func AppURL(adminURL, appUser, password string) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("database url must be a postgres:// URL with a host")
	}
	if password != "" {
		u.User = url.UserPassword(appUser, password)
	} else {
		u.User = url.User(appUser)
	}
	return u.String(), nil
}

// Redact hides the password of a database URL for logs and messages.
func Redact(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "(unparseable database url)"
	}
	return u.Redacted()
}

// pgx parse errors may quote the URL, password included; never pass them on.
func redact(error) error { return fmt.Errorf("invalid connection string") }
