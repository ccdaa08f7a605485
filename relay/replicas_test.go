package relay_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/accountdb/accountdb/internal/natstest"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/relay"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// clusterJS connects as the core to every node of c (NATS_URL as a list),
// reconnecting as the service does.
func clusterJS(t *testing.T, c *natstest.Cluster) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(c.URLs(), append(c.Options(t, natsauth.Core()),
		nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// What an operator tried first, and what broke the relay: a stream whose
// publishers send Nats-Expected-Last-Msg-Id, moved from one replica to
// three in place. The new replicas are filled by catch-up, which does not
// record the last message's id; each then refuses the next message when it
// applies it ("critical write error: last msgid mismatch"), drops out, and
// the stream loses its quorum. This is why bus.NewMessage sends
// Nats-Expected-Last-Sequence instead. If this test fails, nats-server no
// longer has the fault and the comment in bus.NewMessage can say so.
func TestExpectedLastMsgIDStallsAStreamMovedToThreeReplicas(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	js := clusterJS(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "REPRO_" + randomSuffix(), Subjects: []string{bus.SubjectPrefix + "repro.>"},
		Storage: jetstream.FileStorage, Duplicates: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	last := ""
	publish := func(i int) error {
		m := &nats.Msg{Subject: bus.SubjectPrefix + "repro.x", Header: nats.Header{}, Data: []byte("x")}
		id := fmt.Sprintf("id-%d", i)
		m.Header.Set(jetstream.MsgIDHeader, id)
		if last != "" {
			m.Header.Set(jetstream.ExpectedLastMsgIDHeader, last)
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := js.PublishMsg(pctx, m)
		if err == nil {
			last = id
		}
		return err
	}
	for i := range 10 {
		if err := publish(i); err != nil {
			t.Fatal(err)
		}
	}
	cfg := s.CachedInfo().Config
	cfg.Replicas = 3
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for i := 10; i < 16; i++ {
		if err := publish(i); err != nil {
			failed++
			t.Logf("publish %d after the move to 3 replicas: %v", i, err)
		}
	}
	if failed == 0 {
		t.Fatal("every publish with Nats-Expected-Last-Msg-Id succeeded after the move to 3 replicas: " +
			"nats-server no longer has the fault bus.NewMessage works around")
	}
}

// ACCOUNTDB_NATS_REPLICAS raised from 1 to 3 on a live deployment: the
// events stream is moved in place while the relay keeps publishing, the
// durable consumers follow it, and then losing the node that leads the
// stream loses nothing.
func TestRelayKeepsPublishingAcrossAMoveToThreeReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := natstest.StartCluster(t, 3)
	db := pgtest.New(t)
	env := &relayEnv{t: t, db: db, store: eventstore.New(db.App, nil), tenants: []uuid.UUID{uuid.New(), uuid.New()}}
	js := clusterJS(t, c)
	if _, err := bus.EnsureStreamReplicas(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	// A durable consumer with no replica count of its own, as the
	// projectors, the agent and ingest create theirs.
	if _, err := js.CreateOrUpdateConsumer(ctx, bus.StreamName, jetstream.ConsumerConfig{Durable: "follower", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	env.startRelay(js, relay.Options{BatchSize: 32})
	total := env.appendEvents(ctx, 120, 3)
	waitFor(t, 30*time.Second, "the first events published", func() bool { return streamMsgCount(t, js) == uint64(total) })

	// The setting changes while events keep coming.
	more := make(chan int, 1)
	go func() { more <- env.appendEvents(ctx, 300, 2) }()
	if _, err := bus.EnsureStreamReplicas(ctx, js, 3); err != nil {
		t.Fatal(err)
	}
	total += <-more
	waitFor(t, 60*time.Second, "every event published on 3 replicas", func() bool { return streamMsgCount(t, js) == uint64(total) })
	leader := waitForReplicas(t, js, 3)
	cons, err := js.Consumer(ctx, bus.StreamName, "follower")
	if err != nil {
		t.Fatal(err)
	}
	// The consumer is remapped after its stream (CI once read it between the
	// two), so it gets the same time to follow.
	waitFor(t, 30*time.Second, "the durable consumer to have 3 copies like its stream", func() bool {
		ci, err := cons.Info(ctx)
		return err == nil && ci.Cluster != nil && len(ci.Cluster.Replicas) == 2
	})

	// Now the stream survives its leader's node.
	t.Logf("stopping %s, the events stream's leader", leader)
	c.Node(leader).Stop()
	total += env.appendEvents(ctx, 100, 2)
	waitFor(t, 60*time.Second, "every event published without the old leader", func() bool { return streamMsgCount(t, js) == uint64(total) })
	env.verifyStream(js)
}

// waitForReplicas waits until the events stream has n current copies and
// returns its leader.
func waitForReplicas(t *testing.T, js jetstream.JetStream, n int) string {
	t.Helper()
	var last string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		s, err := js.Stream(context.Background(), bus.StreamName)
		if err == nil {
			info := s.CachedInfo()
			current := 0
			if info.Cluster != nil && info.Cluster.Leader != "" {
				current = 1
				for _, r := range info.Cluster.Replicas {
					if r.Current {
						current++
					}
				}
			}
			if info.Config.Replicas == n && current == n {
				return info.Cluster.Leader
			}
			last = fmt.Sprintf("config %d replicas, %d current", info.Config.Replicas, current)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("events stream: %s, want %d current copies", last, n)
	return ""
}

func randomSuffix() string { return uuid.NewString()[:8] }
