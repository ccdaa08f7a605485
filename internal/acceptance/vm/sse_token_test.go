package vm_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/stacktest"
)

// TestEventsWithAnAPIToken: an API token with vm:read follows the feed like
// a session, and its stream ends as soon as the token is revoked (the
// revocation is an access-revoking event), not at the next heartbeat.
func TestEventsWithAnAPIToken(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	ten := s.Tenant(t, "token-feed")
	session := s.Login(t, s.User(t, ten, auth.RoleOperator)).AccessToken
	var tok struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	if r := s.Do(t, session, http.MethodPost, "/v1/users/me/tokens", map[string]any{"name": "feed", "permissions": []string{"vm:read"}}, &tok); r.StatusCode != http.StatusCreated {
		t.Fatalf("create token: %d %s", r.StatusCode, r.Body)
	}
	sub := subscribe(t, s.URL, tok.Token, "", "")
	if sub.resp.StatusCode != http.StatusOK {
		t.Fatalf("feed with a token: %d", sub.resp.StatusCode)
	}
	select {
	case <-sub.done:
		t.Fatalf("the stream ended before the revocation: %v", sub.err)
	case <-time.After(500 * time.Millisecond):
	}
	if r := s.Do(t, session, http.MethodDelete, "/v1/users/me/tokens/"+tok.ID, nil, nil); r.StatusCode != http.StatusAccepted {
		t.Fatalf("revoke: %d %s", r.StatusCode, r.Body)
	}
	select {
	case <-sub.done:
	case <-time.After(5 * time.Second):
		t.Fatal("an event stream outlived its API token's revocation")
	}
}
