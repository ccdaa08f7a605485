// Package pgtest gives each test package a fresh PostgreSQL database with every
// migration applied, and drops it afterwards. It fails the test, loudly, when
// PostgreSQL cannot be reached: tests never skip for a missing service.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/accountdb/accountdb/migrations"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultAdminURL is used when DATABASE_URL is unset, as in `make test`.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres"

// DB is one fresh, migrated database.
type DB struct {
	Name     string
	AdminURL string // superuser on this database: for DDL-level test set-up only
	AppURL   string // the service role, subject to row-level security
	App      *pgxpool.Pool
}

// AdminURL is the superuser URL of the server tests use: DATABASE_URL, else
// DefaultAdminURL.
func AdminURL() string {
	if base := os.Getenv("DATABASE_URL"); base != "" {
		return base
	}
	return DefaultAdminURL
}

// New creates, migrates and registers cleanup for a fresh database on the
// server at DATABASE_URL.
func New(tb testing.TB) *DB {
	tb.Helper()
	return NewOn(tb, AdminURL())
}

// NewOn is New on the server whose superuser URL is base (a Server's URL).
func NewOn(tb testing.TB, base string) *DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("pgtest: PostgreSQL is required at %s (set DATABASE_URL; `.ci/run` starts it): %v",
			tenantdb.Redact(base), err)
	}
	defer admin.Close(ctx)

	name := "accountdb_test_" + randomHex(6)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	adminURL := withDatabase(tb, base, name)
	tb.Cleanup(func() { drop(tb, base, name) })

	if _, err := migrations.Up(ctx, adminURL); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	appURL, err := tenantdb.AppURL(adminURL, migrations.AppRole, "")
	if err != nil {
		tb.Fatal(err)
	}
	pool, err := tenantdb.Open(ctx, appURL, tenantdb.PoolOptions{MaxConns: 40, ApplicationName: "accountdb-test"})
	if err != nil {
		tb.Fatalf("pgtest: connect as %s: %v", migrations.AppRole, err)
	}
	tb.Cleanup(pool.Close)
	return &DB{Name: name, AdminURL: adminURL, AppURL: appURL, App: pool}
}

// AdminConn opens a superuser connection to the test database, closed at cleanup.
func (d *DB) AdminConn(tb testing.TB) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), d.AdminURL)
	if err != nil {
		tb.Fatalf("pgtest: admin connect: %v", err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func drop(tb testing.TB, base, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Errorf("pgtest: drop %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		tb.Errorf("pgtest: drop %s: %v", name, err)
	}
}

func withDatabase(tb testing.TB, base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("pgtest: DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("pgtest: random: %v", err))
	}
	return hex.EncodeToString(b)
}
