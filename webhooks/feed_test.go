package webhooks_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/google/uuid"
)

// inOrder fails unless rcv got exactly n distinct events, in log order.
func inOrder(t *testing.T, name string, rcv *receiver, n int) {
	t.Helper()
	got := distinct(rcv.accepted())
	if len(got) != n {
		t.Fatalf("%s received %d distinct events, want %d", name, len(got), n)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Position <= got[i-1].Position {
			t.Fatalf("%s: out of order, %d after %d", name, got[i].Position, got[i-1].Position)
		}
	}
}

// consumers are the names of the stream's consumers starting with prefix.
func consumers(t *testing.T, b *bed, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := b.JetStream(t).Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	names := s.ConsumerNames(ctx)
	for n := range names.Name() {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// TestEndpointsOfATenantShareOneConsumer: three endpoints of a tenant read
// through one consumer (its feed) and each gets its events in order, while
// a fourth of the same tenant hangs on its first delivery: it delays none
// of them, and the feed goes on without it.
func TestEndpointsOfATenantShareOneConsumer(t *testing.T) {
	b := newBed(t, quick)
	hung := newReceiver(t)
	release := make(chan struct{})
	hung.hold = release
	t.Cleanup(func() { close(release) })
	hh := b.hook(t, b.token, map[string]any{"url": hung.url(), "event_types": []string{"user_created"}}, "")
	hung.setSecrets(hh.Secret)
	live := make([]*receiver, 3)
	ids := make([]string, len(live))
	for i := range live {
		live[i] = newReceiver(t)
		h := b.hook(t, b.token, map[string]any{"url": live[i].url(), "event_types": []string{"user_created"}}, "")
		live[i].setSecrets(h.Secret)
		ids[i] = strings.ReplaceAll(h.ID, "-", "")
	}
	users := b.users(t, b.tenant, 4)
	stacktest.Eventually(t, pipelineWait, "the first events at every live endpoint", func() bool {
		for _, r := range live {
			if len(distinct(r.accepted())) < len(users) {
				return false
			}
		}
		return true
	})
	// Caught up, the live endpoints' workers read the tenant's feed, not
	// consumers of their own.
	feed := "hookfeed_" + strings.ReplaceAll(b.tenant.String(), "-", "") + "_"
	stacktest.Eventually(t, pipelineWait, "one consumer for the tenant's endpoints", func() bool {
		if len(consumers(t, b, feed)) != 1 {
			return false
		}
		for _, id := range ids {
			if len(consumers(t, b, "hook_"+id)) != 0 {
				return false
			}
		}
		return true
	})
	users = append(users, b.users(t, b.tenant, 6)...)
	stacktest.Eventually(t, pipelineWait, "every event at every live endpoint", func() bool {
		for _, r := range live {
			if len(distinct(r.accepted())) < len(users) {
				return false
			}
		}
		return true
	})
	for i, r := range live {
		inOrder(t, "live endpoint "+ids[i], r, len(users))
	}
	if n := len(hung.accepted()); n != 0 {
		t.Fatalf("the hung endpoint accepted %d", n)
	}
}

// TestSharedFeedAcrossARestart: two endpoints of a tenant reading its
// feed; the core stops and another starts (a replica taking over, or the
// same restarted); each endpoint carries on from its own cursor and gets
// every event once at least, in order, none lost.
func TestSharedFeedAcrossARestart(t *testing.T) {
	b := newBed(t, quick)
	rs := []*receiver{newReceiver(t), newReceiver(t)}
	for _, r := range rs {
		h := b.hook(t, b.token, map[string]any{"url": r.url(), "event_types": []string{"user_created"}}, "")
		r.setSecrets(h.Secret)
	}
	before := b.users(t, b.tenant, 5)
	stacktest.Eventually(t, pipelineWait, "the first events at both endpoints", func() bool {
		return len(distinct(rs[0].accepted())) == len(before) && len(distinct(rs[1].accepted())) == len(before)
	})
	b.Stop()
	next := b.Replica(t)
	var after []uuid.UUID
	for range 5 {
		after = append(after, next.User(t, b.tenant, "viewer").ID)
	}
	n := len(before) + len(after)
	stacktest.Eventually(t, pipelineWait, "every event at both endpoints", func() bool {
		return len(distinct(rs[0].accepted())) >= n && len(distinct(rs[1].accepted())) >= n
	})
	inOrder(t, "endpoint 1", rs[0], n)
	inOrder(t, "endpoint 2", rs[1], n)
}
