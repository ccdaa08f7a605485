package api

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"
)

// RateCounter counts requests per key in windows that every replica
// shares (api/pglimits keeps them in PostgreSQL). Hit counts one request
// of key for a limit over window and returns the key's rate including it:
// the count of the current window plus the previous window's weighted by
// how much of it still lies within one window of now (httprate's sliding
// window, so a burst at a window's edge is not allowed twice).
type RateCounter interface {
	Hit(ctx context.Context, key string, window time.Duration) (float64, error)
}

// sharedRateLimit refuses with 429 rate_limited once a key's rate passes
// n per window. The refused request was counted too: a client that keeps
// retrying stays refused until it slows down. If the counter cannot be
// reached the request is refused with 503, never let through uncounted.
func sharedRateLimit(c RateCounter, n int, window time.Duration, key func(r *http.Request) (string, error)) func(http.Handler) http.Handler {
	retryAfter := strconv.Itoa(max(1, int(math.Ceil(window.Seconds()))))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k, err := key(r)
			if err != nil {
				WriteError(w, r, err)
				return
			}
			if k == "" {
				next.ServeHTTP(w, r)
				return
			}
			rate, err := c.Hit(r.Context(), k, window)
			if err != nil {
				slog.Default().WarnContext(r.Context(), "rate limit counter unavailable", "err", err)
				WriteProblem(w, r, Unavailable())
				return
			}
			w.Header().Set("X-RateLimit-Limit", strconv.Itoa(n))
			if math.Round(rate) > float64(n) {
				w.Header().Set("X-RateLimit-Remaining", "0")
				w.Header().Set("Retry-After", retryAfter)
				WriteProblem(w, r, RateLimited())
				return
			}
			w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(n-int(math.Round(rate))))
			next.ServeHTTP(w, r)
		})
	}
}

// KeyedRate is one limit of a chain: Limit.N requests per Limit.Window
// for each key Key returns ("" when the limit does not apply).
type KeyedRate struct {
	Limit RateLimit
	Key   func(r *http.Request) (string, error)
}

// RateHit is one key's count asked of a ChainRateCounter.
type RateHit struct {
	Key    string
	Window time.Duration
	N      int
}

// ChainRateCounter is a RateCounter that also counts a chain of limits in
// one call (api/pglimits: one statement, one round trip), as nested
// limits would count them: each hit is counted only if every one before
// it was within its N, so a request one limit refuses does not use up
// the next (a user over their rate does not spend their tenant's). It
// returns the rates of the hits it counted, in order.
type ChainRateCounter interface {
	RateCounter
	HitChain(ctx context.Context, hits []RateHit) ([]float64, error)
}

// SharedRateLimitChain applies limits in order, as nested
// SharedRateLimitByKey middlewares would, with c counting all of them in
// one call when it is a ChainRateCounter (an authenticated request passes
// the per-user and the per-tenant limit: one database round trip instead
// of two). The headers are the last counted limit's, or the refusing one's.
func SharedRateLimitChain(c RateCounter, limits ...KeyedRate) func(http.Handler) http.Handler {
	return NewRateChain(c, limits...).Limit
}

// RateChain is SharedRateLimitChain's limits: Limit is the middleware;
// Start counts a request's limits before it reaches Limit
// (ratelimit_early.go).
type RateChain struct {
	c      RateCounter
	cc     ChainRateCounter // c, when it counts chains; else nil
	limits []KeyedRate
}

// NewRateChain is the chain of limits counted by c.
func NewRateChain(c RateCounter, limits ...KeyedRate) *RateChain {
	cc, _ := c.(ChainRateCounter)
	return &RateChain{c: c, cc: cc, limits: limits}
}

// Limit is the chain as a middleware: it waits for the count Start began,
// or counts now.
func (rc *RateChain) Limit(next http.Handler) http.Handler {
	if rc.cc == nil {
		for i := len(rc.limits) - 1; i >= 0; i-- {
			next = SharedRateLimitByKey(rc.c, rc.limits[i].Limit.N, rc.limits[i].Limit.Window, rc.limits[i].Key)(next)
		}
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits, rates, err := rc.started(r)
		if hits == nil && err == nil {
			if hits, err = rc.hitsOf(r); err != nil {
				WriteError(w, r, err)
				return
			}
			if len(hits) == 0 {
				next.ServeHTTP(w, r)
				return
			}
			rates, err = rc.cc.HitChain(r.Context(), hits)
		}
		if err != nil {
			slog.Default().WarnContext(r.Context(), "rate limit counter unavailable", "err", err)
			WriteProblem(w, r, Unavailable())
			return
		}
		for i, rate := range rates {
			n := hits[i].N
			w.Header().Set("X-RateLimit-Limit", strconv.Itoa(n))
			if math.Round(rate) > float64(n) {
				w.Header().Set("X-RateLimit-Remaining", "0")
				w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(hits[i].Window.Seconds())))))
				WriteProblem(w, r, RateLimited())
				return
			}
			w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(n-int(math.Round(rate))))
		}
		next.ServeHTTP(w, r)
	})
}

// hitsOf is r's hit of each limit that applies to it.
func (rc *RateChain) hitsOf(r *http.Request) ([]RateHit, error) {
	hits := make([]RateHit, 0, len(rc.limits))
	for _, l := range rc.limits {
		k, err := l.Key(r)
		if err != nil {
			return nil, err
		}
		if k != "" {
			hits = append(hits, RateHit{Key: k, Window: l.Limit.Window, N: l.Limit.N})
		}
	}
	return hits, nil
}
