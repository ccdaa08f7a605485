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
