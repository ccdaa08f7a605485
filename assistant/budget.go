package assistant

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Budget counts each tenant's model tokens per UTC day. Used is what the
// tenant's questions of today used; Add counts more. Both run under the
// tenant's row-level security scope.
type Budget interface {
	Used(ctx context.Context, tenant uuid.UUID) (int64, error)
	Add(ctx context.Context, tenant uuid.UUID, tokens int64) error
}

// PGBudget keeps the counts in assistant_token_usage (migration 00046), on
// the database's clock, so every replica shares them.
type PGBudget struct{ Pool *pgxpool.Pool }

var _ Budget = PGBudget{}

const today = `(now() AT TIME ZONE 'UTC')::date`

func (b PGBudget) Used(ctx context.Context, tenant uuid.UUID) (int64, error) {
	var n int64
	found, err := tenantdb.ReadRow(ctx, b.Pool, tenantdb.Tenant(tenant),
		`SELECT tokens FROM assistant_token_usage WHERE tenant_id = $1 AND day = `+today, []any{tenant}, &n)
	if err != nil {
		return 0, fmt.Errorf("assistant budget: %w", err)
	}
	if !found {
		return 0, nil
	}
	return n, nil
}

func (b PGBudget) Add(ctx context.Context, tenant uuid.UUID, tokens int64) error {
	if tokens <= 0 {
		return nil
	}
	err := tenantdb.InTx(ctx, b.Pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO assistant_token_usage (tenant_id, day, tokens) VALUES ($1, `+today+`, $2)
			ON CONFLICT (tenant_id, day) DO UPDATE SET tokens = assistant_token_usage.tokens + EXCLUDED.tokens`, tenant, tokens)
		return err
	})
	if err != nil {
		return fmt.Errorf("assistant budget: %w", err)
	}
	return nil
}
