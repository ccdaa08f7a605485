package tenantdb_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Read's one-round-trip pipeline keeps every promise ReadTx makes: the
// scope holds for the queued statements, a tenant sees only its rows, the
// transaction is read-only, a failure skips what follows, and nothing of
// the scope is left on the pooled connection afterwards.
func TestReadPipelineIsAScopedReadOnlyTransaction(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	pool, err := tenantdb.Open(ctx, db.AppURL, tenantdb.PoolOptions{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := eventstore.New(pool, nil)
	a, b := uuid.New(), uuid.New()
	for _, tenant := range []uuid.UUID{a, a, b} {
		st, _ := eventlog.NewStreamID("vm", uuid.New())
		if _, err := store.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(),
			Events: []eventstore.NewEvent{{Type: "vm_created"}}}); err != nil {
			t.Fatal(err)
		}
	}

	var seen, again int
	var setting, readOnly string
	var pid1 int
	err = tenantdb.Read(ctx, pool, tenantdb.Tenant(a), func(b *pgx.Batch) {
		b.Queue(`SELECT count(*) FROM events`).QueryRow(func(r pgx.Row) error { return r.Scan(&seen) })
		b.Queue(`SELECT count(*), current_setting('app.tenant_id'), current_setting('transaction_read_only'), pg_backend_pid() FROM events`).
			QueryRow(func(r pgx.Row) error { return r.Scan(&again, &setting, &readOnly, &pid1) })
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != 2 || again != 2 || setting != a.String() || readOnly != "on" {
		t.Fatalf("tenant a: %d then %d events, app.tenant_id %q, read only %q; want 2, 2, %s, on", seen, again, setting, a, readOnly)
	}
	if found, err := tenantdb.ReadRow(ctx, pool, tenantdb.Tenant(b), `SELECT count(*) FROM events`, nil, &seen); err != nil || !found || seen != 1 {
		t.Fatalf("tenant b: %d events (found %v, %v), want 1", seen, found, err)
	}
	if found, err := tenantdb.ReadRow(ctx, pool, tenantdb.Tenant(uuid.New()), `SELECT stream_id FROM events LIMIT 1`, nil, new(string)); err != nil || found {
		t.Fatalf("a stranger found an event (%v)", err)
	}

	// Read-only: a write fails, and the statement queued after it never runs.
	ran := false
	err = tenantdb.Read(ctx, pool, tenantdb.Tenant(a), func(b *pgx.Batch) {
		b.Queue(`INSERT INTO tenant_activity VALUES ($1, 'vm', 'x', 1, 1, now())`, a)
		b.Queue(`SELECT 1`).Exec(func(pgconn.CommandTag) error { ran = true; return nil })
	})
	if err == nil || !strings.Contains(err.Error(), "read-only transaction") {
		t.Fatalf("a write in Read: %v, want a read-only transaction error", err)
	}
	if ran {
		t.Fatal("the statement after a failed one ran")
	}

	// The same (only) connection afterwards: no scope, no read-only flag.
	var pid2, n int
	var after, ro string
	if err := pool.QueryRow(ctx, `SELECT pg_backend_pid(), coalesce(current_setting('app.tenant_id', true), ''),
		current_setting('transaction_read_only'), (SELECT count(*) FROM events)`).Scan(&pid2, &after, &ro, &n); err != nil {
		t.Fatal(err)
	}
	if pid1 != pid2 {
		t.Fatalf("test needs the same connection twice: %d then %d", pid1, pid2)
	}
	if after != "" || ro != "off" || n != 0 {
		t.Fatalf("Read left its scope on the connection: app.tenant_id %q, read only %q, %d events visible", after, ro, n)
	}
	if err := tenantdb.Read(ctx, pool, tenantdb.Scope{}, func(*pgx.Batch) {}); !errors.Is(err, tenantdb.ErrNoScope) {
		t.Fatalf("empty scope: want ErrNoScope, got %v", err)
	}
}
