package acceptance_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/stacktest"
)

// openStream opens GET /v1/events (resuming from the start of the log, as
// the 100 streams did) and returns the answer once its head is in;
// cancel closes the stream.
func openStream(t *testing.T, base, token string) (*http.Response, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", "0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stop := func() { cancel(); resp.Body.Close() }
	t.Cleanup(stop)
	return resp, stop
}

// TestEventStreamsAreCappedPerUserAndTenant: past the caps a stream is
// refused with 429 and Retry-After; closing one frees its slot.
func TestEventStreamsAreCappedPerUserAndTenant(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{Limits: api.Limits{StreamsPerUser: 2, StreamsPerTenant: 3}})
	tenant, other := s.Tenant(t, "streams"), s.Tenant(t, "streams-other")
	a := s.Login(t, s.User(t, tenant, auth.RoleViewer)).AccessToken
	b := s.Login(t, s.User(t, tenant, auth.RoleViewer)).AccessToken
	c := s.Login(t, s.User(t, other, auth.RoleViewer)).AccessToken
	open := func(token string, want int) func() {
		t.Helper()
		resp, cancel := openStream(t, s.URL, token)
		if resp.StatusCode != want {
			body, _ := io.ReadAll(resp.Body)
			t.Fatalf("GET /v1/events: %d %s, want %d", resp.StatusCode, body, want)
		}
		if want == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("429 as %q, want a problem", ct)
			}
		}
		return cancel
	}

	closeFirst := open(a, http.StatusOK)
	open(a, http.StatusOK)
	open(a, http.StatusTooManyRequests) // a third of one user
	open(b, http.StatusOK)
	open(b, http.StatusTooManyRequests) // a fourth of one tenant
	open(c, http.StatusOK)              // another tenant is not affected

	closeFirst()
	stacktest.Eventually(t, 10*time.Second, "the closed stream's slot to free", func() bool {
		resp, cancel := openStream(t, s.URL, a)
		defer cancel()
		return resp.StatusCode == http.StatusOK
	})
}
