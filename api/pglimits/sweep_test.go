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
	"github.com/jackc/pgx/v5/pgxpool"
)

// Run forgets the counters whose windows ended two windows ago, off the
// requests' path: when it starts and after every SweepEvery counted
// requests, so the table stays bounded whatever keys a spray of addresses
// makes. It keeps every counter that still weighs in a rate, including
// those of a longer window this replica never counted (another replica's).
func TestRunForgetsDeadCounters(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	db := pgtest.New(t)
	s := pglimits.New(db.App, slog.New(slog.DiscardHandler))
	pglimits.SetSweepPeriod(s, 24*time.Hour) // only the start and the counted requests sweep
	minute, hour := "user:"+uuid.NewString(), "tenant:"+uuid.NewString()
	for _, h := range []struct {
		key    string
		window time.Duration
	}{{minute, time.Minute}, {hour, time.Hour}} {
		if _, err := s.Hit(ctx, h.key, h.window); err != nil {
			t.Fatal(err)
		}
	}
	// 1,200 dead minute counters (more than one DELETE's batch) and a day
	// counter three hours into its window: dead by this replica's longest
	// window (an hour), alive by its own.
	insertCounters(t, db.App, 1200, 60, "3 hours")
	insertCounters(t, db.App, 1, 86400, "3 hours")

	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitForNoDeadCounters(t, db.App, "at start")
	if n := countRows(t, db.App, `window_secs = 86400`); n != 1 {
		t.Fatalf("the day counter still in its window: %d rows, want kept", n)
	}
	if rate, err := s.Hit(ctx, hour, time.Hour); err != nil || rate != 2 {
		t.Fatalf("a current counter after the sweep: rate %v (%v), want 2 (kept)", rate, err)
	}

	// A spray's worth of new dead rows: the counted requests sweep them.
	insertCounters(t, db.App, 700, 60, "3 hours")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < pglimits.SweepEvery; i += 4 {
				if _, err := s.Hit(ctx, minute, time.Minute); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	waitForNoDeadCounters(t, db.App, "after counted requests")
	if n := countRows(t, db.App, `window_secs = 86400`); n != 1 {
		t.Fatalf("the day counter after the second sweep: %d rows, want kept", n)
	}
}

func insertCounters(t *testing.T, pool *pgxpool.Pool, n, secs int, age string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `INSERT INTO rate_counters (key_hash, window_secs, window_start, count, prev_count)
		SELECT sha256(convert_to(gen_random_uuid()::text, 'UTF8')), $2, clock_timestamp() - $3::interval, 7, 3
		FROM generate_series(1, $1)`, n, secs, age); err != nil {
		t.Fatal(err)
	}
}

func countRows(t *testing.T, pool *pgxpool.Pool, where string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM rate_counters WHERE `+where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitForNoDeadCounters waits for the sweep (it runs apart from the
// caller); the deadline only bounds a failing test.
func waitForNoDeadCounters(t *testing.T, pool *pgxpool.Pool, when string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := countRows(t, pool, `window_secs = 60 AND window_start < clock_timestamp() - interval '2 hours'`)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d dead counters left, want none", when, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
