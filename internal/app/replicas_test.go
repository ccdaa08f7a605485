package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/internal/authtest"
	"github.com/accountdb/accountdb/internal/natstest"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/projections"
	"github.com/google/uuid"
)

// Two replicas, and a read model falling behind (its apply lock held
// here): only the replica running the projector turns unready, so a load
// balancer always keeps a backend; both are ready again once it catches up.
func TestLaggingProjectorMakesOneReplicaUnready(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := pgtest.New(t)
	ns := natstest.Start(t)
	keys := authtest.KeySet(t)
	var urls []string
	var store *eventstore.Store
	for range 2 {
		sys, err := app.Start(ctx, app.Config{AppDatabaseURL: db.AppURL, NATSURL: ns.URL(), NATSOptions: ns.CoreOptions(t), HTTPAddr: "127.0.0.1:0",
			Identity: app.Identity{Keys: keys}, MaxProjectorLag: 50 * time.Millisecond}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- sys.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		urls, store = append(urls, sys.URL()), sys.Store
	}
	for _, u := range urls {
		eventually(t, 15*time.Second, "ready", func() bool { code, _ := getReady(t, u); return code == http.StatusOK })
	}

	name := projections.TenantActivity{}.Name()
	admin := db.AdminConn(t)
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock(80, hashtext($1))`, projections.CheckpointName(name)); err != nil {
		t.Fatal(err)
	}
	// An event only tenant_activity (which counts every event) applies.
	st, _ := eventlog.NewStreamID("probe", uuid.New())
	if _, err := store.Append(ctx, eventstore.Append{Stream: st, TenantID: uuid.New(), Expected: eventstore.NoStream(),
		Events: []eventstore.NewEvent{{Type: "probe_recorded"}}}); err != nil {
		t.Fatal(err)
	}
	check := "projector_" + name
	eventually(t, 15*time.Second, "one replica to report the lagging projector", func() bool {
		for _, u := range urls {
			if code, b := getReady(t, u); code == http.StatusServiceUnavailable && b.Checks[check].Status == "failing" {
				return true
			}
		}
		return false
	})
	for range 20 { // the other stays ready throughout
		ready := 0
		var bodies []readyBody
		for _, u := range urls {
			code, b := getReady(t, u)
			if code == http.StatusOK {
				ready++
			}
			bodies = append(bodies, b)
		}
		if ready != 1 {
			t.Fatalf("%d of 2 replicas ready while one projector lags, want exactly 1: %+v", ready, bodies)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_unlock(80, hashtext($1))`, projections.CheckpointName(name)); err != nil {
		t.Fatal(err)
	}
	for _, u := range urls {
		eventually(t, 15*time.Second, "ready after catching up", func() bool { code, _ := getReady(t, u); return code == http.StatusOK })
	}
}
