package pglimits_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/accountdb/accountdb/api/pglimits"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/google/uuid"
)

// Two replicas count one key together: the limit is the deployment's, not
// each process's.
func TestRateIsSharedAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	a, b := pglimits.New(db.App, slog.New(slog.DiscardHandler)), pglimits.New(db.App, slog.New(slog.DiscardHandler))
	key := "user:" + uuid.NewString()
	var wg sync.WaitGroup
	for _, s := range []*pglimits.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, err := s.Hit(ctx, key, time.Hour); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rate, err := a.Hit(ctx, key, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// 101 requests in this window (plus a weighted previous window of 0).
	if rate != 101 {
		t.Fatalf("rate after 101 requests through two replicas: %v, want 101", rate)
	}
	if other, err := b.Hit(ctx, "user:"+uuid.NewString(), time.Hour); err != nil || other != 1 {
		t.Fatalf("another key: %v %v, want 1", other, err)
	}
	if sameKeyOtherLimit, err := b.Hit(ctx, key, time.Minute); err != nil || sameKeyOtherLimit != 1 {
		t.Fatalf("the same key under a limit of another window: %v %v, want counted apart", sameKeyOtherLimit, err)
	}
}

// The caps on streams and exports hold across replicas, a released slot
// frees at once, and a dead replica's slots stop counting after their TTL.
func TestSlotsAreSharedAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	a, b := pglimits.New(db.App, slog.New(slog.DiscardHandler)), pglimits.New(db.App, slog.New(slog.DiscardHandler))
	tenant, alice, bob := uuid.New(), uuid.New(), uuid.New()
	take := func(s *pglimits.Store, user uuid.UUID) (func(), string) {
		t.Helper()
		release, refused, err := s.Acquire(ctx, "streams", user, tenant, 2, 3)
		if err != nil {
			t.Fatal(err)
		}
		return release, refused
	}
	r1, _ := take(a, alice)
	_, _ = take(b, alice)
	if _, refused := take(a, alice); refused != "user" {
		t.Fatalf("alice's third stream over two replicas: refused %q, want by the per-user cap", refused)
	}
	_, _ = take(b, bob)
	if _, refused := take(a, bob); refused != "tenant" {
		t.Fatalf("the tenant's fourth stream: refused %q, want by the per-tenant cap", refused)
	}
	if _, refused, err := a.Acquire(ctx, "exports", bob, tenant, 2, 3); err != nil || refused != "" {
		t.Fatalf("an export while streams are capped: refused %q err %v, want each kind capped apart", refused, err)
	}
	r1()
	if _, refused := take(a, bob); refused != "" {
		t.Fatalf("after a release: refused %q, want the freed slot", refused)
	}
}

func TestDeadReplicaSlotsExpire(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	dead := pglimits.NewWithTTL(db.App, slog.New(slog.DiscardHandler), 200*time.Millisecond)
	live := pglimits.New(db.App, slog.New(slog.DiscardHandler))
	tenant, user := uuid.New(), uuid.New()
	if _, refused, err := dead.Acquire(ctx, "exports", user, tenant, 1, 1); err != nil || refused != "" {
		t.Fatalf("first export: %q %v", refused, err)
	}
	if _, refused, _ := live.Acquire(ctx, "exports", user, tenant, 1, 1); refused == "" {
		t.Fatal("a second export while the first is held elsewhere was allowed")
	}
	// The holder never renews (it died): its slot stops counting.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, refused, err := live.Acquire(ctx, "exports", user, tenant, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if refused == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a dead replica's slot still counts after its TTL")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchmarkHit is the cost a shared rate limit adds to a request: one
// UPSERT round trip per limit (an authenticated request passes two).
func BenchmarkHit(b *testing.B) {
	ctx := context.Background()
	db := pgtest.New(b)
	s := pglimits.New(db.App, slog.New(slog.DiscardHandler))
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = "user:" + uuid.NewString()
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Hit(ctx, keys[i%len(keys)], time.Minute); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkHitOneTenant is the worst case: every request of the run on one
// key (one tenant's limit), serialised by its row lock.
func BenchmarkHitOneTenant(b *testing.B) {
	ctx := context.Background()
	db := pgtest.New(b)
	s := pglimits.New(db.App, slog.New(slog.DiscardHandler))
	key := "tenant:" + uuid.NewString()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Hit(ctx, key, time.Minute); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
