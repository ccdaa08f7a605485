package migrations_test

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/migrations"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// freshDatabase creates an empty database and returns its administrator URL.
func freshDatabase(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	base := pgtest.AdminURL()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL is required at %s: %v", tenantdb.Redact(base), err)
	}
	defer conn.Close(ctx)
	name := "accountdb_test_backfill_" + uuid.NewString()[:8]
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// Events recorded before migration 00008 are chained by it, in stream order,
// and new appends continue their chains.
func TestEventHashBackfillsExistingEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adminURL := freshDatabase(t)
	db, err := sql.Open("pgx", adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 7); err != nil {
		t.Fatal(err)
	}
	tenant := uuid.New()
	long := eventlog.StreamID{Type: "vm", ID: uuid.New()}
	short := eventlog.StreamID{Type: "user", ID: uuid.New()}
	// As the superuser, which row-level security does not bind; interleaved
	// so that stream order differs from position order.
	for _, e := range []struct {
		stream eventlog.StreamID
		v      int
	}{{long, 1}, {short, 1}, {long, 2}, {long, 3}} {
		if _, err := db.ExecContext(ctx, `INSERT INTO events (stream_id, stream_type, stream_version, event_id,
			event_type, tenant_id, correlation_id, data) VALUES ($1, $2, $3, $4, 'thing_happened', $5, $6, $7)`,
			e.stream.String(), e.stream.Type, e.v, uuid.New(), tenant, uuid.New(), `{"b": 2, "a": [1, "x"]}`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO streams (stream_id, stream_type, tenant_id, version)
			VALUES ($1, $2, $3, $4) ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version`,
			e.stream.String(), e.stream.Type, tenant, e.v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := migrations.Up(ctx, adminURL); err != nil {
		t.Fatal(err)
	}

	appURL, err := tenantdb.AppURL(adminURL, migrations.AppRole, "")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := tenantdb.Open(ctx, appURL, tenantdb.PoolOptions{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := eventstore.New(pool, nil)
	rep, err := store.VerifyChains(ctx, eventstore.VerifyFilter{})
	if err != nil || !rep.OK() || rep.EventsChecked != 4 || rep.StreamsChecked != 2 {
		t.Fatalf("after the backfill: %+v, %v", rep, err)
	}
	if _, err := store.Append(ctx, eventstore.Append{Stream: long, TenantID: tenant, Expected: eventstore.Exactly(3),
		Events: []eventstore.NewEvent{{Type: "thing_happened"}}}); err != nil {
		t.Fatal(err)
	}
	rep, err = store.VerifyChains(ctx, eventstore.VerifyFilter{})
	if err != nil || !rep.OK() || rep.EventsChecked != 5 {
		t.Fatalf("after a new append: %+v, %v", rep, err)
	}
	var nulls int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE hash IS NULL OR prev_hash IS NULL`).Scan(&nulls); err != nil || nulls != 0 {
		t.Fatalf("%d events without a hash, %v", nulls, err)
	}
}
