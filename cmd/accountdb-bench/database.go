package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/migrations"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5"
)

// benchDB is a fresh, migrated database that exists for one run. The store
// connects as the service role, as the server does, so row-level security and
// the app role's grants are part of every figure.
type benchDB struct {
	name      string
	serverURL string // the administrator's URL as given, for CREATE and DROP
	adminURL  string // the administrator on the bench database
	appURL    string // accountdb_app on the bench database
	admin     *pgx.Conn
	store     *eventstore.Store
	closeApp  func()
}

// appApplicationName names the store's connections in pg_stat_activity (the
// wait-event sampler looks for it).
const appApplicationName = "accountdb-bench"

// appPoolSize covers the largest writer level plus the relay and a reader.
const appPoolSize = 48

func openBenchDB(ctx context.Context, serverURL string) (*benchDB, error) {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL is required at %s (set DATABASE_URL): %w", tenantdb.Redact(serverURL), err)
	}
	defer conn.Close(context.Background())
	db := &benchDB{name: "accountdb_bench_" + randomHex(6), serverURL: serverURL}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+db.name); err != nil {
		return nil, fmt.Errorf("create database %s: %w", db.name, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = db.drop()
		}
	}()
	if db.adminURL, err = withDatabase(serverURL, db.name); err != nil {
		return nil, err
	}
	if _, err := migrations.Up(ctx, db.adminURL); err != nil {
		return nil, err
	}
	// The service role has no password under trust authentication (as in CI);
	// elsewhere ACCOUNTDB_APP_DB_PASSWORD supplies it, as for the server.
	if db.appURL, err = tenantdb.AppURL(db.adminURL, migrations.AppRole, os.Getenv("ACCOUNTDB_APP_DB_PASSWORD")); err != nil {
		return nil, err
	}
	pool, err := tenantdb.Open(ctx, db.appURL, tenantdb.PoolOptions{MaxConns: appPoolSize, ApplicationName: appApplicationName})
	if err != nil {
		return nil, fmt.Errorf("connect as %s: %w", migrations.AppRole, err)
	}
	db.closeApp = pool.Close
	db.store = eventstore.New(pool, nil)
	if db.admin, err = pgx.Connect(ctx, db.adminURL); err != nil {
		return nil, fmt.Errorf("admin connect: %w", err)
	}
	ok = true
	return db, nil
}

// plainInsertTable is figure 2's physical baseline: one row of the bench
// payload per transaction, a bigint identity key and nothing else. It lives in
// the bench database only, never in a migration.
const plainInsertTable = "bench_plain_insert"

// createPlainInsertTable creates it as the administrator and lets the service
// role insert, so that pgbench connects as the same role for both scripts.
func (db *benchDB) createPlainInsertTable(ctx context.Context) error {
	_, err := db.admin.Exec(ctx, `CREATE TABLE `+plainInsertTable+` (
		id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, data jsonb NOT NULL);
		GRANT INSERT ON `+plainInsertTable+` TO `+migrations.AppRole)
	if err != nil {
		return fmt.Errorf("create %s: %w", plainInsertTable, err)
	}
	return nil
}

// countEvents counts the log as the administrator, who is not subject to RLS.
func (db *benchDB) countEvents(ctx context.Context) (int, error) {
	var n int
	err := db.admin.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n)
	return n, err
}

// drop closes every connection and drops the database, even after a cancel.
func (db *benchDB) drop() error {
	if db.closeApp != nil {
		db.closeApp()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if db.admin != nil {
		db.admin.Close(ctx)
	}
	conn, err := pgx.Connect(ctx, db.serverURL)
	if err != nil {
		return fmt.Errorf("drop %s: %w", db.name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db.name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop %s: %w", db.name, err)
	}
	return nil
}

func withDatabase(serverURL, name string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("DATABASE_URL must be a postgres:// URL with a host")
	}
	u.Path = "/" + name
	return u.String(), nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("random: %v", err))
	}
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }
