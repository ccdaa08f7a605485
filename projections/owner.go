package projections

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/migrations"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// OpenOwnerPool connects to adminURL (the administrator's URL, as used for
// migrations) and switches every connection to the owner role, which owns the
// read-model tables: Rebuild's DDL needs it. Row-level security is forced on
// the owner as well, so the pool is no way around tenant scopes. Never serve
// requests from it.
func OpenOwnerPool(ctx context.Context, adminURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		// pgx parse errors may quote the URL, password included.
		return nil, fmt.Errorf("owner pool: invalid connection string")
	}
	cfg.MaxConns = 4
	rp := cfg.ConnConfig.RuntimeParams
	rp["idle_in_transaction_session_timeout"] = "60s"
	rp["application_name"] = "accountdb-rebuild"
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, "SET ROLE "+pgx.Identifier{migrations.OwnerRole}.Sanitize()); err != nil {
			return err
		}
		return tenantdb.RegisterUUIDAfterConnect(ctx, conn)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("owner pool: %w", err)
	}
	return pool, nil
}
