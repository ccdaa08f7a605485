package tenantdb

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// readScopeSQL is setScopeSQL that also makes its transaction read-only,
// as ReadTx's BEGIN READ ONLY does.
const readScopeSQL = `SELECT set_config('app.tenant_id', $1, true),
       set_config('app.actor_id', $2, true),
       set_config('app.role', $3, true),
       set_config('app.permissions', $4, true),
       set_config('app.cross_tenant', $5, true),
       set_config('app.platform_admin', $6, true),
       set_config('transaction_read_only', 'on', true)`

// Read is ReadTx in one round trip, for reads whose statements are known
// before any answer comes back (a request's query): the scope and the
// statements queue adds go to PostgreSQL as one pipeline, ended by a
// single Sync. PostgreSQL runs such a pipeline as one implicit
// transaction, so the scope holds for every statement after it and ends
// with it, as a transaction-local setting does in ReadTx; the
// transaction is read-only; and if any statement fails, those after it
// are skipped and the transaction rolls back. ReadTx costs four round
// trips (BEGIN, the scope, the query, COMMIT); this one.
//
// Answers are handled by the callbacks queue gives its queued statements
// (QueuedQuery.Query, QueryRow, Exec), in order; the first error is
// returned.
func Read(ctx context.Context, pool *pgxpool.Pool, s Scope, queue func(b *pgx.Batch)) error {
	if s.TenantID == uuid.Nil && !s.CrossTenant && !s.PlatformAdmin {
		return ErrNoScope
	}
	b := &pgx.Batch{}
	b.Queue(readScopeSQL, s.args()...)
	queue(b)
	return pool.SendBatch(ctx, b).Close()
}

// ReadRow runs one single-row query under s in one round trip (Read) and
// scans its row into dest; found is false when there is none.
func ReadRow(ctx context.Context, pool *pgxpool.Pool, s Scope, sql string, args []any, dest ...any) (found bool, err error) {
	err = Read(ctx, pool, s, func(b *pgx.Batch) {
		b.Queue(sql, args...).QueryRow(func(row pgx.Row) error { return row.Scan(dest...) })
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}
