package api

import (
	"net/http"
	"time"

	"github.com/go-chi/httprate"
)

// RateLimitByIP limits each client address (ClientIP, so X-Forwarded-For
// counts only through trusted proxies; IPv6 by /64) to n requests per
// window. Over the limit: 429 rate_limited with Retry-After in seconds.
func RateLimitByIP(n int, window time.Duration) func(http.Handler) http.Handler {
	return SharedRateLimitByIP(nil, n, window)
}

// SharedRateLimitByIP is RateLimitByIP counted by c, shared by every
// replica; a nil c counts in this process.
func SharedRateLimitByIP(c RateCounter, n int, window time.Duration) func(http.Handler) http.Handler {
	return SharedRateLimitByKey(c, n, window, func(r *http.Request) (string, error) { return addressRateKey(r), nil })
}

// addressRateKey is the client's address as a rate-limit key.
func addressRateKey(r *http.Request) string {
	a := ClientIP(r)
	if !a.IsValid() {
		return "unknown" // one shared bucket for unresolvable peers
	}
	return httprate.CanonicalizeIP(a.String())
}

// RateLimitByKey limits each key that key returns to n requests per window,
// e.g. per user or per tenant after authentication. A key of "" means the
// limit does not apply to this request (no user yet): pair it with
// RateLimitByIP. An error from key is answered through WriteError. Each call
// makes an independent in-process counter.
func RateLimitByKey(n int, window time.Duration, key func(r *http.Request) (string, error)) func(http.Handler) http.Handler {
	return SharedRateLimitByKey(nil, n, window, key)
}

// SharedRateLimitByKey is RateLimitByKey counted by c, so that the limit
// holds across replicas; a nil c counts in this process (httprate).
func SharedRateLimitByKey(c RateCounter, n int, window time.Duration, key func(r *http.Request) (string, error)) func(http.Handler) http.Handler {
	if c != nil {
		return sharedRateLimit(c, n, window, key)
	}
	rl := httprate.NewRateLimiter(n, window,
		httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
			if v := w.Header().Get("Retry-After"); v == "" || v == "0" {
				w.Header().Set("Retry-After", "1")
			}
			WriteProblem(w, r, RateLimited())
		}),
		httprate.WithErrorHandler(WriteError),
	)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k, err := key(r)
			if err != nil {
				WriteError(w, r, err)
				return
			}
			if k == "" || !rl.RespondOnLimit(w, r, k) {
				next.ServeHTTP(w, r)
			}
		})
	}
}
