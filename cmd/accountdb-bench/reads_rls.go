package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/accountdb/accountdb/migrations"
	"github.com/accountdb/accountdb/projections"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// rlsCase is one query's cost with row-level security and without.
type rlsCase struct {
	Query               string
	Iterations          int
	RLSMean, BypassMean time.Duration // the query's round trip, client side
	RLSP50, BypassP50   time.Duration
	// The server's execution time (EXPLAIN (ANALYZE, TIMING OFF) of the
	// same query, in a pass after the timed one): what PostgreSQL spends,
	// without the round trip and the scheduling of a busy machine.
	RLSExecP50, BypassExecP50   time.Duration
	RLSExecMean, BypassExecMean time.Duration
	RLSPlan, BypassPlan         string // EXPLAIN (ANALYZE, BUFFERS) of one run
}

// Overhead is RLS's cost over the bypass's, as a fraction: the medians
// of the round trip (the means carry the machine's scheduling outliers)
// and of the server's execution time.
func (c rlsCase) Overhead() (roundTrip, exec float64) {
	return float64(c.RLSP50)/float64(c.BypassP50) - 1, float64(c.RLSExecP50)/float64(c.BypassExecP50) - 1
}

// measureRLS runs the API's two read queries (projections.ListVMsSQL and
// GetVMSQL, the text the server runs) on one connection of one pool,
// connected as the administrator: once as the service role (SET LOCAL
// ROLE accountdb_app: row-level security on, the tenant set as the API
// sets it) and once as a role made for the run that bypasses RLS and is
// not a superuser (SET LOCAL ROLE to it: the same privilege checks as the
// service role, no policies), with the same explicit tenant predicate,
// the same scope statement and the same transaction around it. The two
// alternate in random order on random tenants; only the query's round trip
// is timed, and no other statement runs in its transaction. Each variant
// has its own statement text (a comment), so each keeps its own prepared
// plan.
func measureRLS(ctx context.Context, adminURL string, tenants []readsTenant, iterations int) ([]rlsCase, error) {
	cfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	bypassRole := "accountdb_bench_bypass_" + randomHex(4)
	if _, err := pool.Exec(ctx, `CREATE ROLE `+bypassRole+` NOLOGIN NOSUPERUSER BYPASSRLS`); err != nil {
		return nil, err
	}
	defer func() {
		dctx := context.WithoutCancel(ctx)
		_, _ = pool.Exec(dctx, `REVOKE SELECT ON vms FROM `+bypassRole)
		_, _ = pool.Exec(dctx, `DROP ROLE `+bypassRole)
	}()
	if _, err := pool.Exec(ctx, `GRANT SELECT ON vms TO `+bypassRole); err != nil {
		return nil, err
	}
	rs := roles{rls: migrations.AppRole, bypass: bypassRole}
	rng := rand.New(rand.NewPCG(1, 2))
	type query struct {
		name, sql string
		args      func(t readsTenant) []any
	}
	queries := []query{
		{"list (first page, limit 50)", projections.ListVMsSQL, func(t readsTenant) []any {
			return []any{t.id, time.Time{}, uuid.Nil, 51, "", ""}
		}},
		{"get (one VM by id)", projections.GetVMSQL, func(t readsTenant) []any {
			return []any{t.id, t.vms[rng.IntN(len(t.vms))]}
		}},
	}
	var out []rlsCase
	for _, q := range queries {
		c := rlsCase{Query: q.name, Iterations: iterations}
		// The round trips first, then the execution times in a pass of their
		// own: an EXPLAIN ANALYZE of the RLS query in the transaction before
		// made the next RLS round trip 10–17 % slower (pgbench, 13:16), a
		// cost of the measurement that no API request pays.
		withRLS, bypass, err := alternate(rng, tenants, iterations, func(rls bool, t readsTenant) (time.Duration, error) {
			return timeScopedQuery(ctx, pool, rs, rls, q.sql, t.id, q.args(t))
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q.name, err)
		}
		execRLS, execBypass, err := alternate(rng, tenants, iterations, func(rls bool, t readsTenant) (time.Duration, error) {
			return scopedExecTime(ctx, pool, rs, rls, q.sql, t.id, q.args(t))
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q.name, err)
		}
		c.RLSMean, c.RLSP50 = meanP50(withRLS)
		c.BypassMean, c.BypassP50 = meanP50(bypass)
		c.RLSExecMean, c.RLSExecP50 = meanP50(execRLS)
		c.BypassExecMean, c.BypassExecP50 = meanP50(execBypass)
		t := tenants[0]
		if c.RLSPlan, err = explainScoped(ctx, pool, rs, true, q.sql, t.id, q.args(t)); err != nil {
			return nil, err
		}
		if c.BypassPlan, err = explainScoped(ctx, pool, rs, false, q.sql, t.id, q.args(t)); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// roles are the two sides of the comparison: the service role (RLS) and
// one that bypasses it.
type roles struct{ rls, bypass string }

func (r roles) of(rls bool) string {
	if rls {
		return r.rls
	}
	return r.bypass
}

// scopedTx opens the transaction the API's reads run in: the tenant scope
// set as tenantdb sets it, as the service role when rls, else as the
// bypassing role.
func scopedTx(ctx context.Context, pool *pgxpool.Pool, role string, tenant uuid.UUID, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+role); err != nil {
			return err
		}
		if err := tenantdb.SetScope(ctx, tx, tenantdb.Tenant(tenant)); err != nil {
			return err
		}
		return fn(tx)
	})
}

func variant(sql string, rls bool) string {
	if rls {
		return "/* rls */ " + sql
	}
	return "/* bypass */ " + sql
}

// alternate measures n times with RLS and n times without, in random
// order, each on a random tenant, and stops at the first error.
func alternate(rng *rand.Rand, tenants []readsTenant, n int, measure func(rls bool, t readsTenant) (time.Duration, error)) (withRLS, without []time.Duration, err error) {
	for i := range 2 * n {
		rls := (i%2 == 0) != (rng.IntN(2) == 0)
		if len(withRLS) == n {
			rls = false
		} else if len(without) == n {
			rls = true
		}
		d, err := measure(rls, tenants[rng.IntN(len(tenants))])
		if err != nil {
			return nil, nil, fmt.Errorf("rls %v: %w", rls, err)
		}
		if rls {
			withRLS = append(withRLS, d)
		} else {
			without = append(without, d)
		}
	}
	return withRLS, without, nil
}

// timeScopedQuery times the query's round trip in the API's transaction.
func timeScopedQuery(ctx context.Context, pool *pgxpool.Pool, r roles, rls bool, sql string, tenant uuid.UUID, args []any) (d time.Duration, err error) {
	err = scopedTx(ctx, pool, r.of(rls), tenant, func(tx pgx.Tx) error {
		start := time.Now()
		rows, err := tx.Query(ctx, variant(sql, rls), args...)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			n++
		}
		rows.Close()
		d = time.Since(start)
		if n == 0 {
			return fmt.Errorf("no rows for tenant %s", tenant)
		}
		return rows.Err()
	})
	return d, err
}

// scopedExecTime has the server run the query under EXPLAIN (ANALYZE,
// TIMING OFF) in the same transaction and returns its execution time.
func scopedExecTime(ctx context.Context, pool *pgxpool.Pool, r roles, rls bool, sql string, tenant uuid.UUID, args []any) (exec time.Duration, err error) {
	err = scopedTx(ctx, pool, r.of(rls), tenant, func(tx pgx.Tx) error {
		var plan []map[string]any
		if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) "+variant(sql, rls), args...).Scan(&plan); err != nil {
			return err
		}
		ms, ok := plan[0]["Execution Time"].(float64)
		if !ok {
			return fmt.Errorf("no execution time in %v", plan)
		}
		exec = time.Duration(ms * float64(time.Millisecond))
		return nil
	})
	return exec, err
}

func explainScoped(ctx context.Context, pool *pgxpool.Pool, r roles, rls bool, sql string, tenant uuid.UUID, args []any) (string, error) {
	var lines []string
	err := scopedTx(ctx, pool, r.of(rls), tenant, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+variant(sql, rls), args...)
		if err != nil {
			return err
		}
		lines, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return strings.Join(lines, "\n"), err
}

func meanP50(ds []time.Duration) (mean, p50 time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return sum / time.Duration(len(ds)), s[len(s)/2]
}
