package vm_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
)

// TestEventsEndWithTheTenantsSuspension: a suspension ends the tenant's
// sessions, and with them its open event streams at once, well before the
// next heartbeat (15 s by default) would notice; a stream opened with an
// API token of the tenant ends too.
func TestEventsEndWithTheTenantsSuspension(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	ten := s.Tenant(t, "suspended-feed")
	viewer := subscribe(t, s.URL, s.Login(t, s.User(t, ten, auth.RoleViewer)).AccessToken, "", "")
	admin := subscribe(t, s.URL, s.Login(t, s.User(t, ten, auth.RoleTenantAdmin)).AccessToken, "", "")
	var tok struct {
		Token string `json:"token"`
	}
	opSession := s.Login(t, s.User(t, ten, auth.RoleOperator)).AccessToken
	if r := s.Do(t, opSession, http.MethodPost, "/v1/users/me/tokens", map[string]any{"name": "feed", "permissions": []string{"vm:read"}}, &tok); r.StatusCode != http.StatusCreated {
		t.Fatalf("create token: %d %s", r.StatusCode, r.Body)
	}
	byToken := subscribe(t, s.URL, tok.Token, "", "")
	if byToken.resp.StatusCode != http.StatusOK {
		t.Fatalf("feed with a token: %d", byToken.resp.StatusCode)
	}
	paTok := s.Login(t, s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)).AccessToken
	if r := s.Do(t, paTok, http.MethodPost, "/v1/tenants/"+ten.String()+"/suspend", nil, nil); r.StatusCode != http.StatusAccepted {
		t.Fatalf("suspend: %d %s", r.StatusCode, r.Body)
	}
	deadline := time.After(5 * time.Second)
	for _, sub := range []*sseStream{viewer, admin, byToken} {
		select {
		case <-sub.done:
		case <-deadline:
			t.Fatal("an event stream outlived its tenant's suspension")
		}
	}
}
