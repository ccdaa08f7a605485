package pgthrottle

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5/pgxpool"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testConfig is small enough to walk through every lockout step.
func testConfig(c *fakeClock) auth.ThrottleConfig {
	return auth.ThrottleConfig{MaxFailures: 3, Window: 10 * time.Minute, Lockout: time.Minute, MaxLockout: 8 * time.Minute, Now: c.Now}
}

func newTestThrottle(t *testing.T) (*Throttle, *fakeClock, *pgtest.DB) {
	t.Helper()
	db := pgtest.New(t)
	c := &fakeClock{t: t0}
	return New(db.App, testConfig(c)), c, db
}

func fail(t testing.TB, th *Throttle, key string, n int) {
	t.Helper()
	for range n {
		if err := th.Failure(context.Background(), key); err != nil {
			t.Fatal(err)
		}
	}
}

func allow(t testing.TB, th *Throttle, key string) (bool, time.Duration) {
	t.Helper()
	ok, wait, err := th.Allow(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return ok, wait
}

func success(t testing.TB, th *Throttle, key string) {
	t.Helper()
	if err := th.Success(context.Background(), key); err != nil {
		t.Fatal(err)
	}
}

// row is a key's stored state.
type row struct {
	failures, lockouts       int
	windowStart, lastFailure time.Time
	lockedUntil              *time.Time
	forgetAt                 time.Time
	found                    bool
	keyHashLen               int
}

func stateOf(t testing.TB, pool *pgxpool.Pool, key string) row {
	t.Helper()
	var r row
	err := pool.QueryRow(context.Background(), `SELECT failures, lockouts, window_start, last_failure, locked_until, forget_at, length(key_hash)
		FROM login_throttle WHERE key_hash = sha256(convert_to($1, 'UTF8'))`, key).
		Scan(&r.failures, &r.lockouts, &r.windowStart, &r.lastFailure, &r.lockedUntil, &r.forgetAt, &r.keyHashLen)
	if err == nil {
		r.found = true
	}
	return r
}

func rows(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM login_throttle`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLockoutEscalatesAndResets walks one key through every rule.
func TestLockoutEscalatesAndResets(t *testing.T) {
	th, c, _ := newTestThrottle(t)
	const k = "acct:alice@example.com"
	steps := []struct {
		name      string
		do        func()
		wantOK    bool
		wantRetry time.Duration
	}{
		{"fresh key", func() {}, true, 0},
		{"two failures", func() { fail(t, th, k, 2) }, true, 0},
		{"third failure locks 1m", func() { fail(t, th, k, 1) }, false, time.Minute},
		{"30s later", func() { c.Advance(30 * time.Second) }, false, 30 * time.Second},
		{"failures while locked do not extend", func() { fail(t, th, k, 5) }, false, 30 * time.Second},
		{"lock expires", func() { c.Advance(30 * time.Second) }, true, 0},
		{"second lockout 2m", func() { fail(t, th, k, 3) }, false, 2 * time.Minute},
		{"expires", func() { c.Advance(2 * time.Minute) }, true, 0},
		{"third lockout 4m", func() { fail(t, th, k, 3) }, false, 4 * time.Minute},
		{"expires", func() { c.Advance(4 * time.Minute) }, true, 0},
		{"fourth lockout 8m", func() { fail(t, th, k, 3) }, false, 8 * time.Minute},
		{"expires", func() { c.Advance(8 * time.Minute) }, true, 0},
		{"capped at 8m", func() { fail(t, th, k, 3) }, false, 8 * time.Minute},
		{"quiet for window+max lockout", func() { c.Advance(8*time.Minute + 18*time.Minute) }, true, 0},
		{"escalation forgotten", func() { fail(t, th, k, 3) }, false, time.Minute},
		{"success clears", func() { success(t, th, k) }, true, 0},
		{"counter restarted", func() { fail(t, th, k, 2) }, true, 0},
		{"window expires", func() { c.Advance(10 * time.Minute) }, true, 0},
		{"old failures forgotten", func() { fail(t, th, k, 2) }, true, 0},
		{"but the third in window locks, escalation reset by success", func() { fail(t, th, k, 1) }, false, time.Minute},
		{"sub-second clock", func() { c.Advance(1500*time.Millisecond + 1234*time.Nanosecond) }, false, 58*time.Second + 500*time.Millisecond - 1234*time.Nanosecond},
	}
	for _, s := range steps {
		s.do()
		ok, retry := allow(t, th, k)
		// PostgreSQL keeps microseconds: retry may be up to 1µs long.
		if ok != s.wantOK || retry < s.wantRetry || retry > s.wantRetry+time.Microsecond {
			t.Fatalf("%s: Allow = %v, %v; want %v, %v", s.name, ok, retry, s.wantOK, s.wantRetry)
		}
	}
	if ok, _ := allow(t, th, "ip:192.0.2.1"); !ok {
		t.Fatal("unrelated key throttled")
	}
}

// TestKeysIndependentAndHashed: keys do not affect each other, Success of an
// unknown key is a no-op, and a key's row is found by its SHA-256.
func TestKeysIndependentAndHashed(t *testing.T) {
	th, _, db := newTestThrottle(t)
	fail(t, th, "acct:a@example.com", 3)
	if ok, _ := allow(t, th, "acct:a@example.com"); ok {
		t.Fatal("acct:a not locked")
	}
	if ok, _ := allow(t, th, "acct:b@example.com"); !ok {
		t.Fatal("acct:b locked")
	}
	success(t, th, "acct:b@example.com") // unknown key: no-op
	if n := rows(t, db.App); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
	if r := stateOf(t, db.App, "acct:a@example.com"); !r.found || r.keyHashLen != 32 {
		t.Fatalf("row of acct:a by its SHA-256: %+v", r)
	}
}

// model is the rule of auth.Throttle written plainly, one key's state in
// memory: the reference the SQL must agree with.
type model struct {
	cfg                                   auth.ThrottleConfig
	failures, lockouts                    int
	windowStart, lockedUntil, lastFailure time.Time
	known                                 bool
}

func (m *model) allow(now time.Time) (bool, time.Duration) {
	if m.known && now.Before(m.lockedUntil) {
		return false, m.lockedUntil.Sub(now)
	}
	return true, 0
}

func (m *model) failure(now time.Time) {
	if !m.known {
		*m = model{cfg: m.cfg, known: true, windowStart: now}
	}
	if now.Before(m.lockedUntil) {
		m.lastFailure = now
		return
	}
	if m.lockouts > 0 && now.Sub(m.lastFailure) >= m.cfg.Horizon() {
		m.lockouts = 0
	}
	if now.Sub(m.windowStart) >= m.cfg.Window {
		m.failures, m.windowStart = 0, now
	}
	m.failures++
	m.lastFailure = now
	if m.failures >= m.cfg.MaxFailures {
		d := m.cfg.Lockout
		for i := 0; i < m.lockouts && d < m.cfg.MaxLockout; i++ {
			d *= 2
		}
		m.lockedUntil = now.Add(min(d, m.cfg.MaxLockout))
		m.lockouts++
		m.failures, m.windowStart = 0, now
	}
}

func (m *model) success() { *m = model{cfg: m.cfg} }

// TestMatchesReferenceModel drives random failures, successes and clock
// steps (including ones that land exactly on a boundary) through the SQL and
// the model, for configurations whose MaxLockout is and is not a doubling
// of Lockout, and compares every answer.
func TestMatchesReferenceModel(t *testing.T) {
	db := pgtest.New(t)
	for ci, base := range []auth.ThrottleConfig{
		{MaxFailures: 3, Window: 10 * time.Minute, Lockout: time.Minute, MaxLockout: 8 * time.Minute},
		{MaxFailures: 2, Window: 5 * time.Minute, Lockout: 45 * time.Second, MaxLockout: 5 * time.Minute},
		{MaxFailures: 1, Window: time.Minute, Lockout: 10 * time.Second, MaxLockout: 10 * time.Second},
	} {
		c := &fakeClock{t: t0}
		base.Now = c.Now
		th := New(db.App, base)
		cfg := th.cfg
		keys := []string{fmt.Sprintf("acct:%d-a", ci), fmt.Sprintf("acct:%d-b", ci), fmt.Sprintf("ip:%d", ci)}
		models := map[string]*model{}
		for _, k := range keys {
			models[k] = &model{cfg: cfg}
		}
		steps := []time.Duration{0, 0, time.Second, 10 * time.Second, cfg.Lockout, cfg.Lockout / 2, cfg.Window,
			cfg.Window / 3, cfg.MaxLockout, cfg.Horizon(), cfg.Horizon() / 2, 7 * time.Minute}
		rng := rand.New(rand.NewPCG(1, uint64(ci)))
		for i := range 1500 {
			k := keys[rng.IntN(len(keys))]
			var op string
			switch r := rng.IntN(20); {
			case r < 12:
				op = "failure"
				fail(t, th, k, 1)
				models[k].failure(c.Now())
			case r < 13:
				op = "success"
				success(t, th, k)
				models[k].success()
			default:
				d := steps[rng.IntN(len(steps))]
				op = "advance " + d.String()
				c.Advance(d)
			}
			for _, k := range keys {
				gotOK, gotWait := allow(t, th, k)
				wantOK, wantWait := models[k].allow(c.Now())
				if gotOK != wantOK || gotWait != wantWait {
					t.Fatalf("config %d, step %d (%s): Allow(%s) = %v, %v; model says %v, %v",
						ci, i, op, k, gotOK, gotWait, wantOK, wantWait)
				}
			}
		}
	}
}

// TestReplicasShareLockouts: two throttles over two pools (two API
// replicas) count one key's failures together, each sees the other's
// lockout, a Success on one clears it for both, and a new instance (a
// restart) still sees a lockout.
func TestReplicasShareLockouts(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	pool2, err := tenantdb.Open(ctx, db.AppURL, tenantdb.PoolOptions{MaxConns: 4, ApplicationName: "accountdb-replica-2"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool2.Close()
	c := &fakeClock{t: t0}
	a, b := New(db.App, testConfig(c)), New(pool2, testConfig(c))
	const k = "acct:shared@example.com"

	fail(t, a, k, 1)
	fail(t, b, k, 1)
	fail(t, a, k, 1) // third failure across both replicas
	for name, th := range map[string]*Throttle{"a": a, "b": b} {
		if ok, wait := allow(t, th, k); ok || wait != time.Minute {
			t.Fatalf("replica %s: Allow = %v, %v; want locked for 1m", name, ok, wait)
		}
	}
	c.Advance(time.Minute)
	fail(t, b, k, 2)
	fail(t, a, k, 1) // second lockout doubles, whichever replica counted
	if ok, wait := allow(t, b, k); ok || wait != 2*time.Minute {
		t.Fatalf("second lockout: Allow = %v, %v; want locked for 2m", ok, wait)
	}

	restarted := New(pool2, testConfig(c))
	if ok, wait := allow(t, restarted, k); ok || wait != 2*time.Minute {
		t.Fatalf("after a restart: Allow = %v, %v; want locked for 2m", ok, wait)
	}
	success(t, b, k)
	if ok, _ := allow(t, a, k); !ok {
		t.Fatal("success on replica b did not clear the key for replica a")
	}
}

// TestConcurrentFailuresCountExactly: failures of one key from many
// goroutines over two pools are each counted once, and a burst past
// MaxFailures locks the key exactly once.
func TestConcurrentFailuresCountExactly(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	pool2, err := tenantdb.Open(ctx, db.AppURL, tenantdb.PoolOptions{MaxConns: 20, ApplicationName: "accountdb-replica-2"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool2.Close()
	c := &fakeClock{t: t0}
	burst := func(cfg auth.ThrottleConfig, key string, goroutines, each int) {
		t.Helper()
		ths := []*Throttle{New(db.App, cfg), New(pool2, cfg)}
		var wg sync.WaitGroup
		errs := make(chan error, goroutines*each)
		for g := range goroutines {
			wg.Go(func() {
				for range each {
					if err := ths[g%2].Failure(ctx, key); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}

	counted := testConfig(c)
	counted.MaxFailures = 100_000
	burst(counted, "acct:counted@example.com", 40, 25)
	if r := stateOf(t, db.App, "acct:counted@example.com"); r.failures != 1000 || r.lockouts != 0 || !r.windowStart.Equal(t0) {
		t.Fatalf("after 1000 concurrent failures: %+v", r)
	}

	burst(testConfig(c), "acct:burst@example.com", 40, 5)
	r := stateOf(t, db.App, "acct:burst@example.com")
	if r.lockouts != 1 || r.failures != 0 || r.lockedUntil == nil || !r.lockedUntil.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after a burst of 200 failures: %+v, want exactly one 1m lockout", r)
	}
}

// TestPruning: each failure deletes up to PruneBatch rows whose key has
// been quiet for Window + MaxLockout, oldest first, never a row still
// meaningful nor the failing key's own; a pruned key behaves as before.
func TestPruning(t *testing.T) {
	th, c, db := newTestThrottle(t)
	horizon := th.cfg.Horizon() // 18m
	const stale = 25
	for i := range stale { // ip:198.51.100.0 is the oldest
		fail(t, th, fmt.Sprintf("ip:198.51.100.%d", i), 3) // locked, escalation 1
		c.Advance(time.Millisecond)
	}
	if n := rows(t, db.App); n != stale {
		t.Fatalf("%d rows, want %d", n, stale)
	}
	c.Advance(horizon - time.Second)
	fail(t, th, "acct:recent@example.com", 1)
	if n := rows(t, db.App); n != stale+1 {
		t.Fatalf("rows pruned before their horizon: %d rows, want %d", n, stale+1)
	}
	c.Advance(2 * time.Second) // the 25 stale keys are past their horizon now
	// The oldest stale key fails again: the batch skips its row, which the
	// same statement updates.
	fail(t, th, "ip:198.51.100.0", 1)
	if n := rows(t, db.App); n != stale+1-PruneBatch {
		t.Fatalf("after one failure: %d rows, want %d (one batch pruned, the key's own row kept)", n, stale+1-PruneBatch)
	}
	if r := stateOf(t, db.App, "ip:198.51.100.0"); r.failures != 1 || r.lockouts != 0 {
		t.Fatalf("the failing key's own stale row: %+v, want a fresh count with its escalation forgotten", r)
	}
	fail(t, th, "acct:recent@example.com", 1)
	fail(t, th, "acct:recent@example.com", 1) // third failure of the recent key: locked
	if n := rows(t, db.App); n != 2 {
		t.Fatalf("%d rows left, want 2 (the recent key and the refreshed one)", n)
	}
	if ok, wait := allow(t, th, "acct:recent@example.com"); ok || wait != time.Minute {
		t.Fatalf("the recent key lost its count to pruning: Allow = %v, %v", ok, wait)
	}
	// A pruned key starts from the first lockout, as it would have anyway.
	fail(t, th, "ip:198.51.100.7", 3)
	if ok, wait := allow(t, th, "ip:198.51.100.7"); ok || wait != time.Minute {
		t.Fatalf("pruned key: Allow = %v, %v; want a 1m lockout", ok, wait)
	}
}

// TestDefaultsAndDatabaseClock: zero fields take the defaults, and without
// Now the database's clock decides.
func TestDefaultsAndDatabaseClock(t *testing.T) {
	db := pgtest.New(t)
	th := New(db.App, auth.ThrottleConfig{})
	if th.cfg.MaxFailures != auth.DefaultThrottleMaxFailures || th.cfg.Window != auth.DefaultThrottleWindow ||
		th.cfg.Lockout != auth.DefaultThrottleLockout || th.cfg.MaxLockout != auth.DefaultThrottleMaxLockout || th.doublings != 6 {
		t.Fatalf("defaults not applied: %+v, %d doublings", th.cfg, th.doublings)
	}
	if n := New(db.App, auth.ThrottleConfig{Lockout: time.Hour, MaxLockout: time.Minute}); n.cfg.MaxLockout != time.Hour || n.doublings != 0 {
		t.Fatalf("MaxLockout below Lockout: %+v, %d doublings", n.cfg, n.doublings)
	}
	const k = "acct:clock@example.com"
	before := time.Now()
	fail(t, th, k, auth.DefaultThrottleMaxFailures)
	ok, wait := allow(t, th, k)
	if ok || wait <= 0 || wait > auth.DefaultThrottleLockout {
		t.Fatalf("Allow = %v, %v; want locked for at most %s", ok, wait, auth.DefaultThrottleLockout)
	}
	r := stateOf(t, db.App, k)
	if r.lastFailure.Before(before.Add(-time.Minute)) || r.lastFailure.After(time.Now().Add(time.Minute)) {
		t.Fatalf("last failure %s, not the database's clock around %s", r.lastFailure, before)
	}
	if !r.forgetAt.Equal(r.lastFailure.Add(th.cfg.Horizon())) {
		t.Fatalf("forget_at %s, want last failure + %s", r.forgetAt, th.cfg.Horizon())
	}
}

// TestStoreDownIsAnError: an unreachable store answers errors, never
// "allowed".
func TestStoreDownIsAnError(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	pool, err := tenantdb.Open(ctx, db.AppURL, tenantdb.PoolOptions{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	th := New(pool, auth.ThrottleConfig{})
	if ok, _, err := th.Allow(ctx, "acct:x"); err == nil || ok {
		t.Fatalf("Allow on a closed pool = %v, %v; want an error and not ok", ok, err)
	}
	if err := th.Failure(ctx, "acct:x"); err == nil {
		t.Fatal("Failure on a closed pool: no error")
	}
	if err := th.Success(ctx, "acct:x"); err == nil {
		t.Fatal("Success on a closed pool: no error")
	}
}

// BenchmarkThrottle measures each statement against the local database:
// what the throttle adds to a login (two Allows, then two Failures or one
// Success).
func BenchmarkThrottle(b *testing.B) {
	ctx := context.Background()
	db := pgtest.New(b)
	th := New(db.App, auth.ThrottleConfig{MaxFailures: 1 << 30})
	for i := range 10_000 { // a table that is not empty
		if err := th.Failure(ctx, fmt.Sprintf("ip:%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Allow", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, _, err := th.Allow(ctx, fmt.Sprintf("ip:%d", i%20_000)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Failure", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := th.Failure(ctx, fmt.Sprintf("ip:%d", i%20_000)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Success", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := th.Success(ctx, fmt.Sprintf("acct:%d", i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
