package agent

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/accountdb/accountdb/internal/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ACCOUNTDB_NATS_REPLICAS raised on a running deployment: the next agent to
// start moves the lease bucket to three copies, keeping its TTL and the
// lease held by the current leader, and the lease then outlives the node
// that led the bucket.
func TestLeaseBucketMovesToTheConfiguredReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := natstest.StartCluster(t, 3)
	nc, err := nats.Connect(c.URLs(), append(c.Options(t, natsauth.Agent()), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	// The TTL leaves the renewal 15 s (TTL/2) to reach the stream's new
	// leader: what is checked is that the lease outlives the node, not how
	// fast an election is when every package of the suite starts at once
	// under -race on two cores (10 s, a 5 s fence, was missed once there).
	const ttl = 30 * time.Second
	first, err := openLease(ctx, js, ttl, 1, newLeaseHolder("first"), log)
	if err != nil {
		t.Fatal(err)
	}
	rev, _, err := first.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, err := openLease(ctx, js, ttl, 3, newLeaseHolder("second"), log)
	if err != nil {
		t.Fatal(err)
	}
	if second.ttl != ttl {
		t.Fatalf("lease TTL %s after the move, want the bucket's %s", second.ttl, ttl)
	}
	var leader string
	deadline := time.Now().Add(30 * time.Second)
	for leader == "" {
		if time.Now().After(deadline) {
			t.Fatal("the lease bucket did not reach 3 current copies within 30s")
		}
		time.Sleep(100 * time.Millisecond)
		// Each look is bounded: a JetStream API request sent while the
		// bucket moves can go unanswered until the test's deadline.
		lctx, cancelLook := context.WithTimeout(ctx, 2*time.Second)
		s, err := js.Stream(lctx, "KV_"+LeaseBucket)
		cancelLook()
		if err != nil {
			continue
		}
		info := s.CachedInfo()
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			continue
		}
		if info.Cluster.Replicas[0].Current && info.Cluster.Replicas[1].Current {
			leader = info.Cluster.Leader
		}
	}
	stopped := time.Now()
	c.Node(leader).Stop()
	// The leader's lease survives: it renews it, as hold does (tries bounded
	// by attemptDeadline, repeated until the TTL/2 fence; one publish sent
	// while the stream elects its new leader can go unanswered), and the
	// standby is refused.
	fenceAt := stopped.Add(first.ttl / 2)
	for {
		sent := time.Now()
		uctx, cancelTry := context.WithDeadline(ctx, first.attemptDeadline(sent, fenceAt))
		_, err := first.kv.Update(uctx, leaseKey, first.value, rev)
		cancelTry()
		if err == nil {
			break
		}
		if time.Now().After(fenceAt) {
			t.Fatalf("no renewal succeeded within TTL/2 of losing the bucket's leader node %s: %v", leader, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := second.kv.Create(ctx, leaseKey, second.value); err == nil {
		t.Fatal("the standby took a lease that is still held")
	}
}
