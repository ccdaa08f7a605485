package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/accountdb/accountdb/api"
)

// problemJSON is the exact wire shape of a problem; decoding is strict so
// that an unexpected member fails the test.
type problemJSON struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail"`
	Code      string            `json:"code"`
	Errors    map[string]string `json:"errors"`
	Instance  string            `json:"instance"`
	RequestID string            `json:"request_id"`
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newRouter is NewHandler with test defaults and extra test-only routes.
func newRouter(t *testing.T, d api.Deps, mount func(chi.Router)) (http.Handler, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if d.Logger == nil {
		d.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if d.Gatherer == nil {
		d.Gatherer = prometheus.NewRegistry()
	}
	h := api.NewHandler(d)
	if mount != nil {
		mux, ok := h.(chi.Router)
		if !ok {
			t.Fatalf("NewHandler returned %T, want a chi.Router", h)
		}
		mount(mux)
	}
	return h, logs
}

func newServer(t *testing.T, d api.Deps, mount func(chi.Router)) (*httptest.Server, *syncBuffer) {
	t.Helper()
	h, logs := newRouter(t, d, mount)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, logs
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return res, body
}

func newRequest(t *testing.T, method, url, contentType string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

func postJSON(t *testing.T, url, body string) (*http.Response, []byte) {
	t.Helper()
	return do(t, newRequest(t, http.MethodPost, url, "application/json", strings.NewReader(body)))
}

// readProblem asserts that res is a well-formed problem with the status and
// code wanted, and returns it. Every problem must carry a code, a title, a
// type and the response's request id.
func readProblem(t *testing.T, res *http.Response, body []byte, status int, code string) problemJSON {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", res.StatusCode, status, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json; body %s", ct, body)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var p problemJSON
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem body %s: %v", body, err)
	}
	if p.Code == "" || p.Code != code {
		t.Fatalf("code %q, want %q; body %s", p.Code, code, body)
	}
	if p.Status != status || p.Title == "" || p.Type == "" {
		t.Fatalf("incomplete problem %s", body)
	}
	if p.RequestID == "" || p.RequestID != res.Header.Get("X-Request-Id") {
		t.Fatalf("request_id %q, header %q", p.RequestID, res.Header.Get("X-Request-Id"))
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("problem Cache-Control %q", res.Header.Get("Cache-Control"))
	}
	return p
}
