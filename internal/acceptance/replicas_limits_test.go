package acceptance_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/stacktest"
)

// Two replicas behind a load balancer enforce one rate and one cap, not
// one each: requests and streams through either count together.
func TestLimitsHoldAcrossReplicas(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{UserRate: api.RateLimit{N: 6, Window: time.Hour},
		Limits: api.Limits{StreamsPerUser: 1, StreamsPerTenant: 10}})
	r := s.Replica(t)
	tenant := s.Tenant(t, "replicas")
	account := s.User(t, tenant, auth.RoleViewer)
	token := s.Login(t, account).AccessToken

	// The per-user stream cap of 1: a stream on one replica refuses the
	// second on the other.
	resp, closeFirst := openStream(t, s.URL, token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first stream: %d", resp.StatusCode)
	}
	resp2, _ := openStream(t, r.URL, token)
	if resp2.StatusCode != http.StatusTooManyRequests {
		body, _ := io.ReadAll(resp2.Body)
		t.Fatalf("second stream on the other replica: %d %s, want 429", resp2.StatusCode, body)
	}
	closeFirst()

	// 6 requests an hour per user, alternating replicas; the two stream
	// requests above counted already, so 4 more pass and the next do not.
	for i := range 4 {
		if got := []*stacktest.Stack{s, r}[i%2].Do(t, token, http.MethodGet, "/v1/users/me", nil, nil); got.StatusCode != http.StatusOK {
			t.Fatalf("request %d (replica %d): %d %s, want 200", i+3, i%2, got.StatusCode, got.Body)
		}
	}
	wantProblem(t, r.Do(t, token, http.MethodGet, "/v1/users/me", nil, nil), http.StatusTooManyRequests, "rate_limited")
	wantProblem(t, s.Do(t, token, http.MethodGet, "/v1/users/me", nil, nil), http.StatusTooManyRequests, "rate_limited")
}

// The console WebSocket's per-address budget is one across replicas too,
// and apart from sign-in's: spending it leaves sign-in untouched.
func TestConsoleAddressLimitHoldsAcrossReplicas(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{PublicRate: api.RateLimit{N: 4, Window: time.Hour}})
	r := s.Replica(t)
	socket := func(st *stacktest.Stack) *http.Response {
		t.Helper()
		resp, err := http.Get(st.URL + "/v1/consoles/not-a-ticket") // not an upgrade: 400, counted first
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	for i := range 4 {
		if got := socket([]*stacktest.Stack{s, r}[i%2]); got.StatusCode != http.StatusBadRequest {
			t.Fatalf("console request %d (replica %d): %d, want 400 (not yet limited)", i+1, i%2, got.StatusCode)
		}
	}
	for _, st := range []*stacktest.Stack{s, r} {
		if got := socket(st); got.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("fifth console request: %d, want 429 on either replica", got.StatusCode)
		}
	}
	login := s.Do(t, "", http.MethodPost, "/v1/auth/login", map[string]string{"email": "nobody@example.com", "password": "wrong-password"}, nil)
	if login.StatusCode == http.StatusTooManyRequests {
		t.Fatalf("sign-in refused with 429 after the console budget was spent: %s", login.Body)
	}
}
