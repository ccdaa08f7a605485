package api_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/go-chi/chi/v5"
)

// chainCounter counts in memory as api/pglimits does in PostgreSQL; calls
// counts the calls made to it, so a test sees one per request.
type chainCounter struct {
	counts map[string]float64
	calls  int
}

func (c *chainCounter) Hit(_ context.Context, key string, _ time.Duration) (float64, error) {
	c.calls++
	c.counts[key]++
	return c.counts[key], nil
}

func (c *chainCounter) HitChain(_ context.Context, hits []api.RateHit) ([]float64, error) {
	c.calls++
	var out []float64
	for _, h := range hits {
		c.counts[h.Key]++
		out = append(out, c.counts[h.Key])
		if math.Round(c.counts[h.Key]) > float64(h.N) {
			break
		}
	}
	return out, nil
}

// hitOnly is a RateCounter that cannot count chains.
type hitOnly struct{ c *chainCounter }

func (h hitOnly) Hit(ctx context.Context, key string, w time.Duration) (float64, error) {
	return h.c.Hit(ctx, key, w)
}

// A chain of a per-user and a per-tenant limit answers as the two nested
// limits it replaces, with a chain counter (one call per request) and
// with a plain one (one call per limit): the user's limit refuses first
// and spends nothing of the tenant's; the tenant's refuses for all its
// users; the headers are the deciding limit's.
func TestRateLimitChain(t *testing.T) {
	for _, chained := range []bool{true, false} {
		counter := &chainCounter{counts: map[string]float64{}}
		var c api.RateCounter = counter
		if !chained {
			c = hitOnly{counter}
		}
		r := chi.NewRouter()
		r.With(api.SharedRateLimitChain(c,
			api.KeyedRate{Limit: api.RateLimit{N: 2, Window: time.Minute}, Key: func(r *http.Request) (string, error) {
				return "user:" + r.Header.Get("X-User"), nil
			}},
			api.KeyedRate{Limit: api.RateLimit{N: 3, Window: time.Hour}, Key: func(*http.Request) (string, error) { return "tenant:t", nil }}),
		).Get("/", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
		hit := func(user string) *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("X-User", user)
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			return rec
		}
		for i, want := range []struct {
			user          string
			code          int
			limit, remain string
		}{
			{"alice", 204, "3", "2"}, {"alice", 204, "3", "1"},
			{"alice", 429, "2", "0"}, // alice's limit: the tenant's count stays at 2
			{"bob", 204, "3", "0"},
			{"bob", 429, "3", "0"}, // the tenant's limit
		} {
			rec := hit(want.user)
			h := rec.Header()
			if rec.Code != want.code || h.Get("X-RateLimit-Limit") != want.limit || h.Get("X-RateLimit-Remaining") != want.remain {
				t.Fatalf("chained %v, request %d (%s): %d limit %s remaining %s, want %d %s %s", chained, i, want.user, rec.Code,
					h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"), want.code, want.limit, want.remain)
			}
			if want.code == 429 && (h.Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "rate_limited")) {
				t.Fatalf("chained %v, request %d: a refusal without Retry-After or problem: %s", chained, i, rec.Body)
			}
		}
		if wantCalls := map[bool]int{true: 5, false: 9}[chained]; counter.calls != wantCalls {
			t.Errorf("chained %v: %d counter calls for 5 requests, want %d", chained, counter.calls, wantCalls)
		}
	}
}

func TestParseRateLimit(t *testing.T) {
	for in, want := range map[string]api.RateLimit{"600/1m": {N: 600, Window: time.Minute}, " 5/1s ": {N: 5, Window: time.Second},
		"100000/24h": {N: 100000, Window: 24 * time.Hour}} {
		if got, err := api.ParseRateLimit(in); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "600", "600/", "/1m", "0/1m", "-5/1m", "5/0s", "5/1500ms", "5/25h", "five/1m"} {
		if _, err := api.ParseRateLimit(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if s := api.DefaultUserRate.String(); s != "600/1m0s" {
		t.Errorf("DefaultUserRate prints %q", s)
	}
}

// blockingCounter is a chain counter whose HitChain signals that it began
// and then waits to be released.
type blockingCounter struct {
	*chainCounter
	began, release chan struct{}
}

func (b *blockingCounter) HitChain(ctx context.Context, hits []api.RateHit) ([]float64, error) {
	b.began <- struct{}{}
	<-b.release
	return b.chainCounter.HitChain(ctx, hits)
}

// A chain started early (RateChain.Start, as authenticate does once the
// token verifies) is counting while what comes between runs (the session
// check), and Limit then decides on that count, made once: the work in
// between sees the count begun before it ends; the answers and headers
// are those of the chain counted in place.
func TestRateChainCountsWhileTheRequestGoesOn(t *testing.T) {
	counter := &blockingCounter{chainCounter: &chainCounter{counts: map[string]float64{}},
		began: make(chan struct{}, 1), release: make(chan struct{})}
	chain := api.NewRateChain(counter, api.KeyedRate{Limit: api.RateLimit{N: 1, Window: time.Minute},
		Key: func(r *http.Request) (string, error) { return "user:" + r.Header.Get("X-User"), nil }})
	sessionCheck := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r = chain.Start(r)
			select {
			case <-counter.began: // the count runs meanwhile
			case <-time.After(10 * time.Second):
				t.Error("the count had not begun when the request went on")
			}
			close(counter.release)
			next.ServeHTTP(w, r)
		})
	}
	for i, want := range []int{http.StatusNoContent, http.StatusTooManyRequests} {
		counter.release = make(chan struct{})
		r := chi.NewRouter()
		r.With(sessionCheck, chain.Limit).Get("/", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("X-User", "alice")
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code != want || rec.Header().Get("X-RateLimit-Limit") != "1" {
			t.Fatalf("request %d: %d, limit %q; want %d and 1", i, rec.Code, rec.Header().Get("X-RateLimit-Limit"), want)
		}
	}
	if counter.calls != 2 {
		t.Fatalf("%d counts for 2 requests, want 2", counter.calls)
	}
}
