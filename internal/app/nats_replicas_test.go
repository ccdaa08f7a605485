package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/ingest"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/internal/authtest"
	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/accountdb/accountdb/internal/natstest"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ACCOUNTDB_NATS_REPLICAS raised from 1 to 3 on a running deployment: the
// next core to start moves both streams it owns (the events and the
// agents' results) to three copies in place, and the durable consumers on
// them (the projectors', ingest's) follow.
func TestCoreMovesItsStreamsToTheConfiguredReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := natstest.StartCluster(t, 3)
	db := pgtest.New(t)
	keys := authtest.KeySet(t)
	start := func(replicas int) func() {
		sctx, stop := context.WithCancel(ctx)
		sys, err := app.Start(sctx, app.Config{AppDatabaseURL: db.AppURL, NATSURL: c.URLs(), NATSOptions: c.Options(t, natsauth.Core()),
			NATSReplicas: replicas, HTTPAddr: "127.0.0.1:0", Identity: app.Identity{Keys: keys}}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("start with %d replicas: %v", replicas, err)
		}
		done := make(chan error, 1)
		go func() { done <- sys.Run(sctx) }()
		return func() { stop(); <-done }
	}
	nc, err := nats.Connect(c.URLs(), append(c.Options(t, natsauth.Core()), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	durables := map[string]string{bus.StreamName: "projector_tenants", protocol.StreamName: ingest.ConsumerName}

	// The waits are deadlines, not sleeps: a clustered JetStream under a
	// loaded -race run can take tens of seconds to settle its assets.
	var last string
	stop := start(1)
	eventually(t, 60*time.Second, "the consumers on one replica (copies: stream, durable, stream, durable)", func() bool {
		last = copies(ctx, js, durables)
		return last == "1 1 1 1"
	}, &last)
	stop()
	stop = start(3)
	defer stop()
	eventually(t, 60*time.Second, "both streams and their consumers on three current replicas", func() bool {
		last = copies(ctx, js, durables)
		return last == "3 3 3 3"
	}, &last)
}

// copies is, for each stream and then its durable, the number of current
// copies, space-separated ("?" when not known yet).
func copies(ctx context.Context, js jetstream.JetStream, durables map[string]string) string {
	// Each look is bounded: an API request sent while the cluster settles
	// can go unanswered, and with the test's own deadline it would wait
	// for it (jetstream's default timeout applies only without one).
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var out []string
	for _, name := range []string{bus.StreamName, protocol.StreamName} {
		n := "?"
		if s, err := js.Stream(ctx, name); err == nil {
			n = current(s.CachedInfo().Config.Replicas, s.CachedInfo().Cluster)
			if cons, err := s.Consumer(ctx, durables[name]); err == nil {
				if ci, err := cons.Info(ctx); err == nil {
					out = append(out, n, current(s.CachedInfo().Config.Replicas, ci.Cluster))
					continue
				}
			}
		}
		out = append(out, n, "?")
	}
	return strings.Join(out, " ")
}

// current counts the leader and the current followers, when all of the
// configured copies are current; "?" otherwise.
func current(want int, ci *jetstream.ClusterInfo) string {
	if ci == nil || ci.Leader == "" {
		return "?"
	}
	n := 1
	for _, r := range ci.Replicas {
		if r.Current {
			n++
		}
	}
	if n != max(want, 1) {
		return "?"
	}
	return fmt.Sprint(n)
}
