package acceptance_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/stacktest"
)

// The refusals of an authenticated request keep their order whatever the
// counts: within the limits the headers say what is left (the last limit
// counted, the tenant's); over the user's, a live session gets 429 and an
// ended one 401 (never a 429 that would tell it the token still counts);
// an API token spends its user's budget.
func TestLimitRefusalsKeepTheirOrder(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{UserRate: api.RateLimit{N: 5, Window: time.Hour},
		TenantRate: api.RateLimit{N: 50, Window: time.Hour}})
	tenant := s.Tenant(t, "limits-order")
	account := s.User(t, tenant, auth.RoleViewer)
	session := s.Login(t, account).AccessToken

	// Counted so far: the token's creation (1).
	token := createToken(t, s, session, map[string]any{"name": "reader", "permissions": []string{"vm:read"}}).Token
	for i, want := range []string{"48", "47"} {
		r := s.Do(t, session, http.MethodGet, "/v1/users/me", nil, nil)
		wantStatus(t, r, http.StatusOK)
		if got := r.Header.Get("X-RateLimit-Remaining"); got != want {
			t.Fatalf("request %d: X-RateLimit-Remaining %q, want %q", i+2, got, want)
		}
	}
	// The API token spends the same user's budget: the 4th and 5th pass,
	// the 6th does not, nor the session's next.
	wantStatus(t, s.Do(t, token, http.MethodGet, "/v1/vms", nil, nil), http.StatusOK)
	wantStatus(t, s.Do(t, token, http.MethodGet, "/v1/vms", nil, nil), http.StatusOK)
	wantProblem(t, s.Do(t, token, http.MethodGet, "/v1/vms", nil, nil), http.StatusTooManyRequests, "rate_limited")
	wantProblem(t, s.Do(t, session, http.MethodGet, "/v1/users/me", nil, nil), http.StatusTooManyRequests, "rate_limited")

	// Signed out (a second session, so that the first's logout is not
	// itself refused by the limit): over the limit, yet a 401.
	other := stacktest.Start(t, stacktest.Options{UserRate: api.RateLimit{N: 3, Window: time.Hour}})
	acc := other.User(t, other.Tenant(t, "limits-order-2"), auth.RoleViewer)
	ended := other.Login(t, acc).AccessToken
	wantStatus(t, other.Do(t, ended, http.MethodPost, "/v1/auth/logout", nil, nil), http.StatusNoContent)
	for range 4 {
		wantProblem(t, other.Do(t, ended, http.MethodGet, "/v1/users/me", nil, nil), http.StatusUnauthorized, "unauthenticated")
	}
}
