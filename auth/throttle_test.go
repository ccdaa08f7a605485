package auth

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

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

func newTestThrottle(maxKeys int) (*Throttle, *fakeClock) {
	c := &fakeClock{t: testNow}
	return NewThrottle(ThrottleConfig{
		MaxFailures: 3, Window: 10 * time.Minute, Lockout: time.Minute, MaxLockout: 8 * time.Minute,
		MaxKeys: maxKeys, Now: c.Now,
	}), c
}

func fail(th *Throttle, key string, n int) {
	for range n {
		th.Failure(key)
	}
}

func TestThrottleLockoutEscalatesAndResets(t *testing.T) {
	th, c := newTestThrottle(100)
	const k = "acct:alice@example.com"
	steps := []struct {
		name      string
		do        func()
		wantOK    bool
		wantRetry time.Duration
	}{
		{"fresh key", func() {}, true, 0},
		{"two failures", func() { fail(th, k, 2) }, true, 0},
		{"third failure locks 1m", func() { fail(th, k, 1) }, false, time.Minute},
		{"30s later", func() { c.Advance(30 * time.Second) }, false, 30 * time.Second},
		{"failures while locked do not extend", func() { fail(th, k, 5) }, false, 30 * time.Second},
		{"lock expires", func() { c.Advance(30 * time.Second) }, true, 0},
		{"second lockout 2m", func() { fail(th, k, 3) }, false, 2 * time.Minute},
		{"expires", func() { c.Advance(2 * time.Minute) }, true, 0},
		{"third lockout 4m", func() { fail(th, k, 3) }, false, 4 * time.Minute},
		{"expires", func() { c.Advance(4 * time.Minute) }, true, 0},
		{"fourth lockout 8m", func() { fail(th, k, 3) }, false, 8 * time.Minute},
		{"expires", func() { c.Advance(8 * time.Minute) }, true, 0},
		{"capped at 8m", func() { fail(th, k, 3) }, false, 8 * time.Minute},
		{"quiet for window+max lockout", func() { c.Advance(8*time.Minute + 18*time.Minute) }, true, 0},
		{"escalation forgotten", func() { fail(th, k, 3) }, false, time.Minute},
		{"success clears", func() { th.Success(k) }, true, 0},
		{"counter restarted", func() { fail(th, k, 2) }, true, 0},
		{"window expires", func() { c.Advance(10 * time.Minute) }, true, 0},
		{"old failures forgotten", func() { fail(th, k, 2) }, true, 0},
		{"but the third in window locks, escalation reset by success", func() { fail(th, k, 1) }, false, time.Minute},
	}
	for _, s := range steps {
		s.do()
		ok, retry := th.Allow(k)
		if ok != s.wantOK || retry != s.wantRetry {
			t.Fatalf("%s: Allow = %v, %v; want %v, %v", s.name, ok, retry, s.wantOK, s.wantRetry)
		}
	}
	if ok, _ := th.Allow("ip:192.0.2.1"); !ok {
		t.Fatal("unrelated key throttled")
	}
}

func TestThrottleKeysIndependent(t *testing.T) {
	th, _ := newTestThrottle(100)
	fail(th, "acct:a", 3)
	if ok, _ := th.Allow("acct:a"); ok {
		t.Fatal("acct:a not locked")
	}
	if ok, _ := th.Allow("acct:b"); !ok {
		t.Fatal("acct:b locked")
	}
	th.Success("acct:b") // unknown key: no-op
	if th.Len() != 1 {
		t.Fatalf("Len = %d", th.Len())
	}
}

func TestThrottleBoundedEvictsOldest(t *testing.T) {
	th, c := newTestThrottle(3)
	for i := range 3 {
		fail(th, fmt.Sprintf("k%d", i), 3)
		c.Advance(time.Second)
	}
	fail(th, "k0", 1) // k0 becomes most recent; k1 is now the oldest
	fail(th, "k3", 1)
	if th.Len() != 3 {
		t.Fatalf("Len = %d", th.Len())
	}
	if ok, _ := th.Allow("k1"); !ok {
		t.Fatal("k1 should have been evicted")
	}
	for _, k := range []string{"k0", "k2"} {
		if ok, _ := th.Allow(k); ok {
			t.Fatalf("%s should still be locked", k)
		}
	}
	for i := range 1000 {
		th.Failure(fmt.Sprintf("x%d", i))
	}
	if th.Len() != 3 {
		t.Fatalf("Len = %d after flood", th.Len())
	}
}

func TestThrottleDefaultsAndConcurrency(t *testing.T) {
	th := NewThrottle(ThrottleConfig{})
	if th.cfg.MaxFailures != DefaultThrottleMaxFailures || th.cfg.MaxKeys != DefaultThrottleMaxKeys || th.cfg.Now == nil {
		t.Fatalf("defaults not applied: %+v", th.cfg)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := fmt.Sprintf("k%d", (g*200+i)%50)
				th.Allow(k)
				th.Failure(k)
				if i%7 == 0 {
					th.Success(k)
				}
			}
		})
	}
	wg.Wait()
	if th.Len() > 50 {
		t.Fatalf("Len = %d", th.Len())
	}
}
