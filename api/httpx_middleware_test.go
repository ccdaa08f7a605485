package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/eventstore"
)

var errTenantSuspended = errors.New("tenant is suspended")

func middlewareRoutes(r chi.Router) {
	r.Get("/test/ip", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(api.ClientIP(r).String()))
	})
	r.Get("/test/panic", func(http.ResponseWriter, *http.Request) {
		panic("pq: syntax error at SELECT secret_column FROM users")
	})
	r.Get("/test/err/{kind}", func(w http.ResponseWriter, r *http.Request) {
		var err error
		switch chi.URLParam(r, "kind") {
		case "conflict":
			err = fmt.Errorf("append: %w", &eventstore.ConflictError{Actual: 7})
		case "sentinel-conflict":
			err = fmt.Errorf("append: %w", eventstore.ErrVersionConflict)
		case "tenant":
			err = fmt.Errorf("load: %w", eventstore.ErrTenantMismatch)
		case "deadline":
			err = fmt.Errorf("query: %w", context.DeadlineExceeded)
		case "custom":
			err = fmt.Errorf("decide: %w", errTenantSuspended)
		case "problem":
			err = fmt.Errorf("wrapped: %w", api.Forbidden("you lack vm:power"))
		default:
			err = errors.New(`ERROR: relation "secret_table" does not exist (SQLSTATE 42P01) SELECT password_hash`)
		}
		api.WriteError(w, r, err)
	})
	r.Group(func(r chi.Router) {
		r.Use(api.RateLimitByIP(3, time.Minute))
		r.Get("/test/limited", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	})
	r.Group(func(r chi.Router) {
		r.Use(api.RateLimitByKey(2, time.Minute, func(r *http.Request) (string, error) {
			if r.Header.Get("X-Test-Fail") != "" {
				return "", errors.New("key store down")
			}
			return r.Header.Get("X-Test-User"), nil
		}))
		r.Get("/test/per-user", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	})
}

func middlewareDeps() api.Deps {
	return api.Deps{Errors: []api.ErrorMapping{{Target: errTenantSuspended, Problem: api.Static(api.InvalidState("the tenant is suspended"))}}}
}

func TestRequestID(t *testing.T) {
	srv, _ := newServer(t, api.Deps{}, nil)
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for in, keep := range map[string]bool{
		"abc-DEF_123":               true,
		strings.Repeat("a", 64):     true,
		"":                          false,
		strings.Repeat("a", 65):     false,
		"has space":                 false,
		"inject\r\nX-Evil: 1":       false,
		"semi;colon":                false,
		"<script>alert(1)</script>": false,
	} {
		req := newRequest(t, http.MethodGet, srv.URL+"/healthz", "", nil)
		if in != "" {
			req.Header["X-Request-Id"] = []string{in}
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			if !keep {
				continue // the client refused to send it
			}
			t.Fatal(err)
		}
		res.Body.Close()
		got := res.Header.Get("X-Request-Id")
		if keep && got != in {
			t.Errorf("id %q replaced by %q", in, got)
		}
		if !keep && !hexID.MatchString(got) {
			t.Errorf("id %q answered with %q", in, got)
		}
	}
}

func TestProblemsForErrors(t *testing.T) {
	srv, logs := newServer(t, middlewareDeps(), middlewareRoutes)
	get := func(path string) (*http.Response, []byte) {
		return do(t, newRequest(t, http.MethodGet, srv.URL+path, "", nil))
	}
	res, body := get("/test/err/conflict")
	if p := readProblem(t, res, body, http.StatusConflict, "version_conflict"); !strings.Contains(p.Detail, "7") {
		t.Errorf("conflict detail %q", p.Detail)
	}
	res, body = get("/test/err/sentinel-conflict")
	readProblem(t, res, body, http.StatusConflict, "version_conflict")
	res, body = get("/test/err/tenant")
	readProblem(t, res, body, http.StatusNotFound, "not_found")
	res, body = get("/test/err/deadline")
	readProblem(t, res, body, http.StatusServiceUnavailable, "unavailable")
	res, body = get("/test/err/custom")
	readProblem(t, res, body, http.StatusUnprocessableEntity, "invalid_state")
	res, body = get("/test/err/problem")
	readProblem(t, res, body, http.StatusForbidden, "forbidden")

	res, body = get("/test/err/sql")
	p := readProblem(t, res, body, http.StatusInternalServerError, "internal")
	if p.Detail != "" || strings.Contains(string(body), "secret") || strings.Contains(string(body), "SQLSTATE") {
		t.Fatalf("internal error leaks: %s", body)
	}
	if l := logs.String(); !strings.Contains(l, "secret_table") || !strings.Contains(l, p.RequestID) {
		t.Fatalf("the cause and request id are not logged: %s", l)
	}

	res, body = get("/no/such/route")
	readProblem(t, res, body, http.StatusNotFound, "not_found")
	res, body = do(t, newRequest(t, http.MethodDelete, srv.URL+"/healthz", "", nil))
	readProblem(t, res, body, http.StatusMethodNotAllowed, "method_not_allowed")
	if allow := res.Header.Values("Allow"); len(allow) == 0 || allow[0] != http.MethodGet {
		t.Errorf("405 Allow %v", allow)
	}
}

func TestPanicIsAProblem(t *testing.T) {
	srv, logs := newServer(t, api.Deps{}, middlewareRoutes)
	res, body := do(t, newRequest(t, http.MethodGet, srv.URL+"/test/panic", "", nil))
	p := readProblem(t, res, body, http.StatusInternalServerError, "internal")
	if strings.Contains(string(body), "secret") || strings.Contains(string(body), "goroutine") || p.Detail != "" {
		t.Fatalf("panic leaks: %s", body)
	}
	if !strings.Contains(logs.String(), "secret_column") {
		t.Fatalf("panic not logged: %s", logs.String())
	}
}

func TestAccessLogOmitsSecrets(t *testing.T) {
	srv, logs := newServer(t, api.Deps{}, decodeRoutes)
	req := newRequest(t, http.MethodPost, srv.URL+"/test/decode?token=querysecret", "application/json", strings.NewReader(`{"name":"bodysecret"}`))
	req.Header.Set("Authorization", "Bearer headersecret")
	req.Header.Set("Cookie", "session=cookiesecret")
	res, _ := do(t, req)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	l := logs.String()
	if !strings.Contains(l, `"route":"/test/decode"`) || !strings.Contains(l, `"status":200`) ||
		!strings.Contains(l, res.Header.Get("X-Request-Id")) || !strings.Contains(l, `"client_ip":"127.0.0.1"`) {
		t.Fatalf("access log incomplete: %s", l)
	}
	for _, s := range []string{"querysecret", "bodysecret", "headersecret", "cookiesecret"} {
		if strings.Contains(l, s) {
			t.Fatalf("log contains %s: %s", s, l)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	h, _ := newRouter(t, api.Deps{}, nil)
	check := func(srv *httptest.Server, wantHSTS bool) {
		t.Helper()
		res, err := srv.Client().Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		for k, v := range map[string]string{
			"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
		} {
			if got := res.Header.Get(k); got != v {
				t.Errorf("%s: %q, want %q", k, got, v)
			}
		}
		if !strings.HasPrefix(res.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("CSP %q", res.Header.Get("Content-Security-Policy"))
		}
		if got := res.Header.Get("Strict-Transport-Security") != ""; got != wantHSTS {
			t.Errorf("HSTS present %v, want %v", got, wantHSTS)
		}
	}
	plain := httptest.NewServer(h)
	defer plain.Close()
	check(plain, false)

	tlsSrv := httptest.NewTLSServer(h)
	defer tlsSrv.Close()
	check(tlsSrv, true)
}

func TestCORS(t *testing.T) {
	srv, logs := newServer(t, api.Deps{CORSOrigins: []string{
		"https://console.example.com", "http://localhost:5173/", "null", "*", "https://*.example.com", "https://x.example.com/path",
	}}, nil)
	if !strings.Contains(logs.String(), "ignoring invalid CORS origin") {
		t.Errorf("invalid origins not reported")
	}
	get := func(origin string) *http.Response {
		req := newRequest(t, http.MethodGet, srv.URL+"/v1/openapi.json", "", nil)
		req.Header.Set("Origin", origin)
		res, _ := do(t, req)
		return res
	}
	for _, o := range []string{"https://console.example.com", "http://localhost:5173"} {
		res := get(o)
		if res.Header.Get("Access-Control-Allow-Origin") != o || !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Origin") {
			t.Errorf("%s: allowed origin headers %v", o, res.Header)
		}
		if res.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("credentials allowed")
		}
		if !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "X-Consistency-Token") {
			t.Errorf("expose headers %q", res.Header.Get("Access-Control-Expose-Headers"))
		}
	}
	for _, o := range []string{"https://evil.example.com", "null", "https://console.example.com.evil.com",
		"http://console.example.com", "https://CONSOLE.example.com", "https://x.example.com", "*", "https://console.example.com:443"} {
		res := get(o)
		if v := res.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("origin %q got Access-Control-Allow-Origin %q", o, v)
		}
		if res.StatusCode != http.StatusOK {
			t.Errorf("origin %q: simple request status %d", o, res.StatusCode)
		}
	}

	preflight := func(origin string) (*http.Response, []byte) {
		req := newRequest(t, http.MethodOptions, srv.URL+"/v1/vms", "", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, idempotency-key")
		return do(t, req)
	}
	res, _ := preflight("https://console.example.com")
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "https://console.example.com" ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Idempotency-Key") ||
		res.Header.Get("Access-Control-Max-Age") == "" {
		t.Fatalf("preflight: %d %v", res.StatusCode, res.Header)
	}
	for _, o := range []string{"https://evil.example.com", "null"} {
		res, body := preflight(o)
		readProblem(t, res, body, http.StatusForbidden, "forbidden")
		for k := range res.Header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("disallowed preflight from %q got %s", o, k)
			}
		}
	}
}

func TestCORSNoneConfigured(t *testing.T) {
	srv, _ := newServer(t, api.Deps{}, nil)
	req := newRequest(t, http.MethodGet, srv.URL+"/healthz", "", nil)
	req.Header.Set("Origin", "https://console.example.com")
	res, _ := do(t, req)
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("origin allowed with no configuration")
	}
}

func TestClientIPOverHTTP(t *testing.T) {
	untrusted, _ := newServer(t, api.Deps{}, middlewareRoutes)
	trusted, _ := newServer(t, api.Deps{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, middlewareRoutes)
	ip := func(srv *httptest.Server, xff ...string) string {
		req := newRequest(t, http.MethodGet, srv.URL+"/test/ip", "", nil)
		for _, v := range xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		_, body := do(t, req)
		return string(body)
	}
	if got := ip(untrusted, "203.0.113.9"); got != "127.0.0.1" {
		t.Errorf("untrusted peer: X-Forwarded-For believed: %s", got)
	}
	if got := ip(trusted, "203.0.113.9"); got != "203.0.113.9" {
		t.Errorf("trusted peer: %s", got)
	}
	if got := ip(trusted); got != "127.0.0.1" {
		t.Errorf("trusted peer without header: %s", got)
	}
}

func TestClientIPResolution(t *testing.T) {
	h, _ := newRouter(t, api.Deps{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"),
	}}, middlewareRoutes)
	cases := []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:1234", []string{"203.0.113.9"}, "192.0.2.1"},              // untrusted peer
		{"10.0.0.5:1234", []string{"203.0.113.9"}, "203.0.113.9"},             // one trusted hop
		{"10.0.0.5:1234", []string{"1.1.1.1, 203.0.113.9"}, "203.0.113.9"},    // left part is the client's word
		{"10.0.0.5:1234", []string{"203.0.113.9, 10.1.1.1"}, "203.0.113.9"},   // chain of trusted proxies
		{"10.0.0.5:1234", []string{"203.0.113.9", "10.1.1.1"}, "203.0.113.9"}, // several header lines
		{"10.0.0.5:1234", []string{"10.9.9.9, 10.1.1.1"}, "10.9.9.9"},         // all trusted: left-most
		{"10.0.0.5:1234", []string{"203.0.113.9, garbage"}, "10.0.0.5"},       // malformed hop stops the walk
		{"10.0.0.5:1234", []string{"garbage, 203.0.113.9"}, "203.0.113.9"},    // malformed left part never read
		{"10.0.0.5:1234", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},      // mapped IPv4
		{"[fd00::1]:443", []string{"2001:db8::7"}, "2001:db8::7"},             // IPv6
		{"[::ffff:10.0.0.5]:1", []string{"198.51.100.2"}, "198.51.100.2"},     // mapped peer
		{"[2001:db8::1]:443", []string{"203.0.113.9"}, "2001:db8::1"},         // untrusted IPv6
		{"10.0.0.5:1234", []string{""}, "10.0.0.5"},                           // empty header
	}
	for _, c := range cases {
		req := httptest.NewRequest(http.MethodGet, "/test/ip", nil)
		req.RemoteAddr = c.remote
		for _, v := range c.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if got := rec.Body.String(); got != c.want {
			t.Errorf("%s %q: %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

func TestRateLimitByIP(t *testing.T) {
	srv, _ := newServer(t, api.Deps{}, middlewareRoutes)
	hit := func(xff string) (*http.Response, []byte) {
		req := newRequest(t, http.MethodGet, srv.URL+"/test/limited", "", nil)
		req.Header.Set("X-Forwarded-For", xff) // untrusted: must not create new buckets
		return do(t, req)
	}
	for i := range 3 {
		if res, body := hit(fmt.Sprintf("203.0.113.%d", i)); res.StatusCode != http.StatusNoContent {
			t.Fatalf("request %d: %d %s", i, res.StatusCode, body)
		}
	}
	res, body := hit("198.51.100.1")
	readProblem(t, res, body, http.StatusTooManyRequests, "rate_limited")
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Fatalf("Retry-After %q", res.Header.Get("Retry-After"))
	}
}

func TestRateLimitByIPBehindProxy(t *testing.T) {
	h, _ := newRouter(t, api.Deps{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, middlewareRoutes)
	hit := func(client string) int {
		req := httptest.NewRequest(http.MethodGet, "/test/limited", nil)
		req.RemoteAddr = "10.0.0.5:1234"
		req.Header.Set("X-Forwarded-For", client)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for range 3 {
		hit("203.0.113.9")
	}
	if c := hit("203.0.113.9"); c != http.StatusTooManyRequests {
		t.Fatalf("4th request from one client: %d", c)
	}
	if c := hit("198.51.100.1"); c != http.StatusNoContent {
		t.Fatalf("another client behind the same proxy is limited: %d", c)
	}
	// IPv6 clients share a bucket per /64.
	for range 3 {
		hit("2001:db8:1:2::1")
	}
	if c := hit("2001:db8:1:2::ffff"); c != http.StatusTooManyRequests {
		t.Fatalf("same /64: %d", c)
	}
}

func TestRateLimitByKey(t *testing.T) {
	srv, _ := newServer(t, api.Deps{}, middlewareRoutes)
	hit := func(user, fail string) (*http.Response, []byte) {
		req := newRequest(t, http.MethodGet, srv.URL+"/test/per-user", "", nil)
		if user != "" {
			req.Header.Set("X-Test-User", user)
		}
		if fail != "" {
			req.Header.Set("X-Test-Fail", fail)
		}
		return do(t, req)
	}
	for range 2 {
		if res, _ := hit("alice", ""); res.StatusCode != http.StatusNoContent {
			t.Fatalf("alice: %d", res.StatusCode)
		}
	}
	res, body := hit("alice", "")
	readProblem(t, res, body, http.StatusTooManyRequests, "rate_limited")
	if res.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	if res, _ := hit("bob", ""); res.StatusCode != http.StatusNoContent {
		t.Fatalf("bob limited by alice's bucket: %d", res.StatusCode)
	}
	for range 5 {
		if res, _ := hit("", ""); res.StatusCode != http.StatusNoContent {
			t.Fatalf("empty key limited: %d", res.StatusCode)
		}
	}
	res, body = hit("carol", "yes")
	p := readProblem(t, res, body, http.StatusInternalServerError, "internal")
	if strings.Contains(string(body), "key store") || p.Detail != "" {
		t.Fatalf("key error leaks: %s", body)
	}
}

// A request whose client went away ends in context.Canceled: that is
// logged as the client's doing, not as a server error; the same error while
// the client still waits is one.
func TestAbandonedRequestIsNotAServerError(t *testing.T) {
	started, finished := make(chan struct{}), make(chan struct{})
	srv, logs := newServer(t, api.Deps{}, func(r chi.Router) {
		r.Get("/test/abandoned", func(w http.ResponseWriter, r *http.Request) {
			defer close(finished)
			close(started)
			<-r.Context().Done()
			api.WriteError(w, r, fmt.Errorf("query: %w", r.Context().Err()))
		})
		r.Get("/test/cancelled-inside", func(w http.ResponseWriter, r *http.Request) {
			api.WriteError(w, r, fmt.Errorf("query: %w", context.Canceled))
		})
	})
	ctx, cancel := context.WithCancel(context.Background())
	req := newRequest(t, http.MethodGet, srv.URL+"/test/abandoned", "", nil).WithContext(ctx)
	go func() {
		<-started
		cancel()
	}()
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatal("the abandoned request was answered")
	}
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler never saw its client go away")
	}
	if l := logs.String(); strings.Contains(l, "request failed") || !strings.Contains(l, "request abandoned by the client") {
		t.Fatalf("abandoned request logged as: %s", l)
	}

	res, body := do(t, newRequest(t, http.MethodGet, srv.URL+"/test/cancelled-inside", "", nil))
	readProblem(t, res, body, http.StatusServiceUnavailable, "unavailable")
	if !strings.Contains(logs.String(), `"msg":"request failed"`) {
		t.Fatalf("a cancellation inside the server is not logged as a failure: %s", logs.String())
	}
}
