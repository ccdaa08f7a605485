package projections

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/tenantdb"
)

// The read models' queries are one statement each, known before anything
// comes back, so they go to PostgreSQL with their scope in one round trip
// (tenantdb.Read: read-only, RLS under scope). These three helpers are the
// shapes every query file uses: rows, one row, a keyset page.

// queryRows runs sql under scope and collects its rows with scan.
func queryRows[T any](ctx context.Context, pool *pgxpool.Pool, scope tenantdb.Scope, scan pgx.RowToFunc[T], sql string, args ...any) ([]T, error) {
	var out []T
	err := tenantdb.Read(ctx, pool, scope, func(b *pgx.Batch) {
		b.Queue(sql, args...).Query(func(rows pgx.Rows) (err error) {
			out, err = pgx.CollectRows(rows, scan)
			return err
		})
	})
	return out, err
}

// queryOne runs sql under scope and scans its one row; domain.ErrNotFound
// when there is none (or scope cannot see it: RLS makes the two alike).
func queryOne[T any](ctx context.Context, pool *pgxpool.Pool, scope tenantdb.Scope, scan pgx.RowToFunc[T], sql string, args ...any) (T, error) {
	var out T
	err := tenantdb.Read(ctx, pool, scope, func(b *pgx.Batch) {
		b.Queue(sql, args...).Query(func(rows pgx.Rows) (err error) {
			out, err = pgx.CollectExactlyOneRow(rows, scan)
			return err
		})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		var zero T
		return zero, domain.ErrNotFound
	}
	return out, err
}

// queryPage runs a keyset query that asked for page.Limit+1 rows (page.args)
// and trims it to the page, saying where the next one starts.
func queryPage[T any](ctx context.Context, pool *pgxpool.Pool, scope tenantdb.Scope, page Page, scan pgx.RowToFunc[T], key func(T) PageKey, sql string, args ...any) ([]T, *PageKey, error) {
	out, err := queryRows(ctx, pool, scope, scan, sql, args...)
	if err != nil {
		return nil, nil, err
	}
	items, next := nextKey(out, page.Limit, key)
	return items, next, nil
}
