package tenantdb_test

import (
	"context"
	"errors"
	"testing"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/migrations"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

func TestServiceRoleCannotBypassRLS(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	var super, bypass, login bool
	var owned int
	err := db.App.QueryRow(ctx, `SELECT rolsuper, rolbypassrls, rolcanlogin,
		(SELECT count(*) FROM pg_class WHERE relowner = r.oid)
		FROM pg_roles r WHERE rolname = current_user`).Scan(&super, &bypass, &login, &owned)
	if err != nil {
		t.Fatal(err)
	}
	if super || bypass || !login || owned != 0 {
		t.Fatalf("service role: superuser=%v bypassrls=%v login=%v owns %d relations", super, bypass, login, owned)
	}
	var user string
	if err := db.App.QueryRow(ctx, `SELECT current_user`).Scan(&user); err != nil || user != migrations.AppRole {
		t.Fatalf("pool connects as %q (%v), want %s", user, err, migrations.AppRole)
	}
	// Every table in the schema belongs to the owner role, not to whoever ran migrations.
	var notOwned []string
	rows, err := db.AdminConn(t).Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r','p') AND pg_get_userbyid(c.relowner) <> $1`, migrations.OwnerRole)
	if err != nil {
		t.Fatal(err)
	}
	notOwned, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(notOwned) != 0 {
		t.Fatalf("tables not owned by %s: %v (%v)", migrations.OwnerRole, notOwned, err)
	}
}

// TestEveryTenantTableHasForcedRLS guards future migrations: any table with a
// tenant_id column must have row-level security enabled and forced, a policy,
// and tenant_id leading an index.
func TestEveryTenantTableHasForcedRLS(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	rows, err := db.AdminConn(t).Query(ctx, `
		SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
		       (SELECT count(*) FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = c.relname),
		       EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
		               WHERE i.indrelid = c.oid AND a.attname = 'tenant_id')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind = 'r'
		  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	checked := map[string]bool{}
	for rows.Next() {
		var (
			name                 string
			enabled, forced, idx bool
			policies             int
		)
		if err := rows.Scan(&name, &enabled, &forced, &policies, &idx); err != nil {
			t.Fatal(err)
		}
		checked[name] = true
		if !enabled || !forced || policies == 0 {
			t.Errorf("table %s: rls enabled=%v forced=%v policies=%d", name, enabled, forced, policies)
		}
		if !idx && name != "events" && name != "streams" && name != "commands" {
			t.Errorf("table %s: no index leads with tenant_id", name)
		}
	}
	for _, must := range []string{"events", "streams", "commands", "tenant_activity"} {
		if !checked[must] {
			t.Errorf("table %s was not checked", must)
		}
	}
}

func TestTenantSeesOnlyItsOwnRows(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	store := eventstore.New(db.App, nil)
	a, b := uuid.New(), uuid.New()
	for _, tenant := range []uuid.UUID{a, a, b} {
		st, _ := eventlog.NewStreamID("vm", uuid.New())
		if _, err := store.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(),
			Events: []eventstore.NewEvent{{Type: "vm_created"}}}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(sc tenantdb.Scope, table string) int {
		var n int
		if err := tenantdb.ReadTx(ctx, db.App, sc, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n)
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, table := range []string{"events", "streams", "commands"} {
		if got := count(tenantdb.Tenant(a), table); table != "commands" && got != 2 {
			t.Errorf("%s: tenant a sees %d rows, want 2", table, got)
		}
		if got := count(tenantdb.Tenant(b), table); table != "commands" && got != 1 {
			t.Errorf("%s: tenant b sees %d rows, want 1", table, got)
		}
		if got := count(tenantdb.Tenant(uuid.New()), table); got != 0 {
			t.Errorf("%s: a stranger sees %d rows", table, got)
		}
	}
	// Without any scope, the service role sees nothing at all.
	var n int
	if err := db.App.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil || n != 0 {
		t.Fatalf("unscoped read saw %d events (%v)", n, err)
	}
	// A tenant cannot write a row for another tenant either.
	err := tenantdb.InTx(ctx, db.App, tenantdb.Tenant(a), func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO tenant_activity VALUES ($1, 'vm', 'x', 1, 1, now())`, b)
		return err
	})
	if err == nil {
		t.Fatal("tenant a wrote a row for tenant b")
	}
	if err := tenantdb.InTx(ctx, db.App, tenantdb.Scope{}, func(pgx.Tx) error { return nil }); !errors.Is(err, tenantdb.ErrNoScope) {
		t.Fatalf("empty scope: want ErrNoScope, got %v", err)
	}
}

// TestScopeDoesNotLeakAcrossPooledConnections runs scoped transactions and
// plain queries on a one-connection pool, so each reuses the connection the
// previous one had: the scope must be gone each time.
func TestScopeDoesNotLeakAcrossPooledConnections(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	pool, err := tenantdb.Open(ctx, db.AppURL, tenantdb.PoolOptions{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := eventstore.New(pool, nil)
	tenant := uuid.New()
	st, _ := eventlog.NewStreamID("vm", uuid.New())
	if _, err := store.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(),
		Events: []eventstore.NewEvent{{Type: "vm_created"}}}); err != nil {
		t.Fatal(err)
	}
	var pid1, pid2 int
	var setting string
	err = tenantdb.ReadTx(ctx, pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid1)
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	err = pool.QueryRow(ctx, "SELECT pg_backend_pid(), coalesce(current_setting('app.tenant_id', true), ''), (SELECT count(*) FROM events)").Scan(&pid2, &setting, &n)
	if err != nil {
		t.Fatal(err)
	}
	if pid1 != pid2 {
		t.Fatalf("test needs the same connection twice: %d then %d", pid1, pid2)
	}
	if setting != "" || n != 0 {
		t.Fatalf("scope leaked to the next user of the connection: app.tenant_id=%q, %d events visible", setting, n)
	}
	// A rolled-back scoped transaction leaks nothing either.
	_ = tenantdb.InTx(ctx, pool, tenantdb.Tenant(tenant), func(pgx.Tx) error { return errors.New("abort") })
	other := uuid.New()
	err = tenantdb.ReadTx(ctx, pool, tenantdb.Tenant(other), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&n)
	})
	if err != nil || n != 0 {
		t.Fatalf("another tenant after a rollback sees %d events (%v)", n, err)
	}
}
