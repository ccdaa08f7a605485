package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/internal/authtest"
	"github.com/accountdb/accountdb/internal/natstest"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/projections"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

type readyBody struct {
	Status string `json:"status"`
	Checks map[string]struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	} `json:"checks"`
}

func getReady(t *testing.T, url string) (int, readyBody) {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b readyBody
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// eventually polls cond until it holds or timeout passes; a last value,
// when given, is shown on failure (what the condition saw last).
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool, last ...*string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			if len(last) > 0 {
				t.Fatalf("timed out after %s waiting for %s; last seen: %q", timeout, what, *last[0])
			}
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSystemEndToEndAndReadiness runs the core as `serve` does and checks the
// whole path (append → relay → JetStream → projector → read model) and that
// /readyz follows NATS and PostgreSQL going away and coming back.
func TestSystemEndToEndAndReadiness(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := pgtest.New(t)
	ns := natstest.Start(t)
	keys := authtest.KeySet(t)
	sys, err := app.Start(ctx, app.Config{AppDatabaseURL: db.AppURL, NATSURL: ns.URL(), NATSOptions: ns.CoreOptions(t), HTTPAddr: "127.0.0.1:0",
		Identity: app.Identity{Keys: keys}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sys.Run(ctx) }()
	url := sys.URL()

	eventually(t, 15*time.Second, "ready", func() bool { code, _ := getReady(t, url); return code == http.StatusOK })

	tenant := uuid.New()
	for range 5 {
		st, _ := eventlog.NewStreamID("vm", uuid.New())
		if _, err := sys.Store.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(),
			Events: []eventstore.NewEvent{{Type: "vm_create_requested"}, {Type: "vm_created"}}}); err != nil {
			t.Fatal(err)
		}
	}
	activity := func() int64 {
		var n int64
		err := tenantdb.ReadTx(ctx, db.App, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT coalesce(sum(event_count), 0) FROM tenant_activity`).Scan(&n)
		})
		if err != nil {
			// The test kills the service role's sessions below, this pool's
			// included; a dead connection reads as "not yet" and is replaced.
			t.Logf("reading tenant_activity: %v", err)
			return -1
		}
		return n
	}
	eventually(t, 15*time.Second, "the projector to count 10 events", func() bool { return activity() == 10 })

	// NATS goes away: readiness fails and says why; appends still succeed.
	ns.Stop()
	eventually(t, 10*time.Second, "readyz to report nats failing", func() bool {
		code, b := getReady(t, url)
		return code == http.StatusServiceUnavailable && b.Checks["nats"].Status == "failing"
	})
	st, _ := eventlog.NewStreamID("vm", uuid.New())
	if _, err := sys.Store.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(),
		Events: []eventstore.NewEvent{{Type: "vm_created"}}}); err != nil {
		t.Fatalf("append while NATS is down: %v", err)
	}
	ns.Restart()
	eventually(t, 20*time.Second, "the event appended during the outage to be projected", func() bool { return activity() == 11 })
	eventually(t, 10*time.Second, "ready again", func() bool { code, _ := getReady(t, url); return code == http.StatusOK })

	// PostgreSQL goes away for the service: its sessions are ended and new
	// ones refused. Readiness fails and says why; when the database accepts
	// connections again, the pool reconnects by itself.
	// A database cannot refuse its own sessions' connections: act from the
	// cluster's maintenance database.
	maint := maintenanceConn(t, db)
	if _, err := maint.Exec(ctx, `ALTER DATABASE `+db.Name+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	if _, err := maint.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'accountdb_app' AND datname = $1`, db.Name); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "readyz to report postgres failing", func() bool {
		code, b := getReady(t, url)
		return code == http.StatusServiceUnavailable && b.Checks["postgres"].Status == "failing"
	})
	if _, err := maint.Exec(ctx, `ALTER DATABASE `+db.Name+` ALLOW_CONNECTIONS true`); err != nil {
		t.Fatal(err)
	}
	st2, _ := eventlog.NewStreamID("vm", uuid.New())
	eventually(t, 10*time.Second, "appends to work after connections were killed", func() bool {
		_, err := sys.Store.Append(ctx, eventstore.Append{Stream: st2, TenantID: tenant, Expected: eventstore.Any(), CommandID: uuid.NewSHA1(uuid.Nil, []byte(st2.String())),
			Events: []eventstore.NewEvent{{Type: "vm_created"}}})
		return err == nil
	})
	// A projector that failed through the outage backs off up to
	// projections.DefaultMaxRetryDelay (30 s) before it tries again.
	eventually(t, projections.DefaultMaxRetryDelay+15*time.Second, "projection after reconnect", func() bool { return activity() == 12 })
	eventually(t, 10*time.Second, "ready after reconnect", func() bool { code, _ := getReady(t, url); return code == http.StatusOK })

	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, metric := range []string{"accountdb_eventstore_append_seconds", "accountdb_relay_publish_lag_seconds", "accountdb_projector_lag_seconds"} {
		if !strings.Contains(string(body), metric) {
			t.Errorf("/metrics lacks %s", metric)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("graceful shutdown did not finish")
	}
}

// maintenanceConn connects as the administrator to the cluster's postgres
// database, closed at cleanup.
func maintenanceConn(t *testing.T, db *pgtest.DB) *pgx.Conn {
	t.Helper()
	u, err := url.Parse(db.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/postgres"
	conn, err := pgx.Connect(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
