package auth

import (
	"container/list"
	"sync"
	"time"
)

// Throttle defaults.
const (
	DefaultThrottleMaxFailures = 5
	DefaultThrottleWindow      = 15 * time.Minute
	DefaultThrottleLockout     = time.Minute
	DefaultThrottleMaxLockout  = time.Hour
	DefaultThrottleMaxKeys     = 100_000
)

// ThrottleConfig configures a Throttle. Zero fields take the defaults.
type ThrottleConfig struct {
	// MaxFailures failures within Window lock the key.
	MaxFailures int
	Window      time.Duration
	// The first lockout lasts Lockout; each further lockout doubles it, up
	// to MaxLockout. The doubling is forgotten after a full Window plus
	// MaxLockout without failures, or on Success.
	Lockout    time.Duration
	MaxLockout time.Duration
	// MaxKeys bounds memory: beyond it the least recently failed key is
	// forgotten.
	MaxKeys int
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Throttle limits login attempts per key in memory. Callers use keys such
// as "acct:<lower-cased email>" and "ip:<address>", call Allow before
// checking a password, and Failure or Success after. Safe for concurrent
// use.
//
// Success clears a key. For address keys, consider calling only Failure, so
// that one valid login does not reset the counter of an address spraying
// many accounts. Allow and Failure are separate calls, so a burst of
// concurrent attempts can all pass Allow before the first Failure lands;
// the lockout takes effect right after.
type Throttle struct {
	cfg     ThrottleConfig
	mu      sync.Mutex
	entries map[string]*list.Element // of *throttleEntry
	lru     list.List                // front = most recently failed
}

type throttleEntry struct {
	key         string
	failures    int
	windowStart time.Time
	lockouts    int
	lockedUntil time.Time
	lastFailure time.Time
}

// NewThrottle returns a Throttle with cfg (zero fields defaulted).
func NewThrottle(cfg ThrottleConfig) *Throttle {
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultThrottleMaxFailures
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultThrottleWindow
	}
	if cfg.Lockout <= 0 {
		cfg.Lockout = DefaultThrottleLockout
	}
	if cfg.MaxLockout <= 0 {
		cfg.MaxLockout = DefaultThrottleMaxLockout
	}
	if cfg.MaxLockout < cfg.Lockout {
		cfg.MaxLockout = cfg.Lockout
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultThrottleMaxKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Throttle{cfg: cfg, entries: map[string]*list.Element{}}
}

// Allow reports whether an attempt for key may proceed now and, if not, how
// long until it may.
func (t *Throttle) Allow(key string) (ok bool, retryAfter time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, found := t.entries[key]
	if !found {
		return true, 0
	}
	now := t.cfg.Now()
	e := el.Value.(*throttleEntry)
	if now.Before(e.lockedUntil) {
		return false, e.lockedUntil.Sub(now)
	}
	return true, 0
}

// Failure records a failed attempt for key, locking it once MaxFailures
// failures fall within one window.
func (t *Throttle) Failure(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	var e *throttleEntry
	if el, found := t.entries[key]; found {
		e = el.Value.(*throttleEntry)
		t.lru.MoveToFront(el)
	} else {
		for len(t.entries) >= t.cfg.MaxKeys {
			oldest := t.lru.Back()
			t.lru.Remove(oldest)
			delete(t.entries, oldest.Value.(*throttleEntry).key)
		}
		e = &throttleEntry{key: key, windowStart: now}
		t.entries[key] = t.lru.PushFront(e)
	}
	if now.Before(e.lockedUntil) {
		// Attempts while locked should have been refused by Allow; they
		// neither count nor extend the lock.
		e.lastFailure = now
		return
	}
	if e.lockouts > 0 && now.Sub(e.lastFailure) >= t.cfg.Window+t.cfg.MaxLockout {
		e.lockouts = 0
	}
	if now.Sub(e.windowStart) >= t.cfg.Window {
		e.failures = 0
		e.windowStart = now
	}
	e.failures++
	e.lastFailure = now
	if e.failures >= t.cfg.MaxFailures {
		d := t.cfg.Lockout
		for i := 0; i < e.lockouts && d < t.cfg.MaxLockout; i++ {
			d *= 2
		}
		d = min(d, t.cfg.MaxLockout)
		e.lockedUntil = now.Add(d)
		e.lockouts++
		e.failures = 0
		e.windowStart = now
	}
}

// Success forgets key's failures and lockout history.
func (t *Throttle) Success(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, found := t.entries[key]; found {
		t.lru.Remove(el)
		delete(t.entries, key)
	}
}

// Len returns the number of keys tracked.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}
