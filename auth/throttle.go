package auth

import (
	"context"
	"time"
)

// Throttle defaults.
const (
	DefaultThrottleMaxFailures = 5
	DefaultThrottleWindow      = 15 * time.Minute
	DefaultThrottleLockout     = time.Minute
	DefaultThrottleMaxLockout  = time.Hour
)

// ThrottleConfig configures a Throttle. Zero fields take the defaults.
type ThrottleConfig struct {
	// MaxFailures failures within Window lock the key.
	MaxFailures int
	Window      time.Duration
	// The first lockout lasts Lockout; each further lockout doubles it, up
	// to MaxLockout. The doubling is forgotten after a full Window plus
	// MaxLockout without failures (Horizon), or on Success.
	Lockout    time.Duration
	MaxLockout time.Duration
	// Now is the clock. Nil means the store's own, which every replica
	// shares (PostgreSQL's for auth/pgthrottle); tests set it to drive time.
	Now func() time.Time
}

// WithDefaults returns c with its zero fields defaulted and MaxLockout at
// least Lockout.
func (c ThrottleConfig) WithDefaults() ThrottleConfig {
	if c.MaxFailures <= 0 {
		c.MaxFailures = DefaultThrottleMaxFailures
	}
	if c.Window <= 0 {
		c.Window = DefaultThrottleWindow
	}
	if c.Lockout <= 0 {
		c.Lockout = DefaultThrottleLockout
	}
	if c.MaxLockout <= 0 {
		c.MaxLockout = DefaultThrottleMaxLockout
	}
	c.MaxLockout = max(c.MaxLockout, c.Lockout)
	return c
}

// Horizon is how long a key must go without failures before forgetting it
// entirely changes nothing: its lock is over, its window too, and its
// lockout escalation is reset.
func (c ThrottleConfig) Horizon() time.Duration { return c.Window + c.MaxLockout }

// Throttle limits login attempts per key. Callers use keys such as
// "acct:<lower-cased email>" and "ip:<address>", call Allow before checking
// a password, and Failure or Success after.
//
// MaxFailures failures within one Window lock a key for Lockout; the window
// then restarts. Failures while locked neither count nor extend the lock.
// Each further lockout doubles, up to MaxLockout; a key quiet for Horizon
// starts again from Lockout. Success forgets a key's failures and lockout
// history. For address keys, call only Failure, so that one valid login
// does not reset the counter of an address spraying many accounts.
//
// Allow and Failure are separate calls, so a burst of concurrent attempts
// can all pass Allow before the first Failure lands; the lockout takes
// effect right after, and concurrent Failures are all counted.
//
// An error means the store could not answer or record: the caller must not
// treat it as "allowed" or let the attempt count for nothing.
type Throttle interface {
	// Allow reports whether an attempt for key may proceed now and, if not,
	// how long until it may.
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
	// Failure records a failed attempt for key.
	Failure(ctx context.Context, key string) error
	// Success forgets key's failures and lockout history.
	Success(ctx context.Context, key string) error
}
