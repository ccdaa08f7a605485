package acceptance_test

import (
	"net/http"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/google/uuid"
)

func refresh(t *testing.T, s *stacktest.Stack, token string) (stacktest.Tokens, stacktest.Response) {
	t.Helper()
	var out stacktest.Tokens
	r := s.Do(t, "", http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": token}, &out)
	return out, r
}

func wantRefreshRefused(t *testing.T, s *stacktest.Stack, token string) {
	t.Helper()
	_, r := refresh(t, s, token)
	wantProblem(t, r, http.StatusUnauthorized, "unauthenticated")
}

type sessionItem struct {
	ID        uuid.UUID `json:"id"`
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
	Current   bool      `json:"current"`
}

func sessions(t *testing.T, s *stacktest.Stack, token string) []sessionItem {
	t.Helper()
	var out struct {
		Items []sessionItem `json:"items"`
	}
	wantStatus(t, s.Do(t, token, http.MethodGet, "/v1/sessions", nil, &out), http.StatusOK)
	return out.Items
}

// TestRefreshRotationAndSessions covers the refresh token's life: rotation,
// reuse detection revoking the whole session, logout, a disabled user, and
// the caller's own session list and revocation.
func TestRefreshRotationAndSessions(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	tenant := s.Tenant(t, "sessions")
	admin := s.User(t, tenant, auth.RoleTenantAdmin)
	adminTok := s.Login(t, admin).AccessToken

	t.Run("rotation and reuse", func(t *testing.T) {
		acct := s.User(t, tenant, auth.RoleViewer)
		first := s.Login(t, acct)
		second, r := refresh(t, s, first.RefreshToken)
		wantStatus(t, r, http.StatusOK)
		if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
			t.Fatalf("refresh did not rotate the refresh token")
		}
		if second.AccessToken == "" || second.AccessToken == first.AccessToken || second.TokenType != "Bearer" || second.ExpiresIn <= 0 {
			t.Fatalf("refresh answered %+v", second)
		}
		if sessionOf(t, second.AccessToken) != sessionOf(t, first.AccessToken) {
			t.Fatal("refresh opened another session")
		}
		wantStatus(t, s.Do(t, second.AccessToken, http.MethodGet, "/v1/users/me", nil, nil), http.StatusOK)
		third, r := refresh(t, s, second.RefreshToken)
		wantStatus(t, r, http.StatusOK)

		// The first refresh token again: copied. The whole session ends.
		wantRefreshRefused(t, s, first.RefreshToken)
		wantRefreshRefused(t, s, third.RefreshToken)
		for _, tok := range []string{first.AccessToken, second.AccessToken, third.AccessToken} {
			wantUnauthenticated(t, s.Do(t, tok, http.MethodGet, "/v1/users/me", nil, nil))
		}
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'session_ended' AND stream_id = $1 AND data->>'reason' = 'refresh_reuse'`,
			"session-"+sessionOf(t, first.AccessToken).String()); n != 1 {
			t.Fatalf("%d session_ended(refresh_reuse) events, want 1", n)
		}
		// The user can still sign in again.
		wantStatus(t, s.Do(t, s.Login(t, acct).AccessToken, http.MethodGet, "/v1/users/me", nil, nil), http.StatusOK)
	})

	t.Run("malformed refresh tokens", func(t *testing.T) {
		for _, tok := range []string{"", "x", "not.a.token", uuid.NewString()} {
			wantRefreshRefused(t, s, tok)
		}
	})

	t.Run("logout", func(t *testing.T) {
		acct := s.User(t, tenant, auth.RoleViewer)
		tok := s.Login(t, acct)
		wantStatus(t, s.Do(t, tok.AccessToken, http.MethodPost, "/v1/auth/logout", nil, nil), http.StatusNoContent)
		wantRefreshRefused(t, s, tok.RefreshToken)
		wantUnauthenticated(t, s.Do(t, tok.AccessToken, http.MethodGet, "/v1/users/me", nil, nil))
	})

	t.Run("disabled user", func(t *testing.T) {
		acct := s.User(t, tenant, auth.RoleViewer)
		one, two := s.Login(t, acct), s.Login(t, acct)
		wantStatus(t, s.Do(t, adminTok, http.MethodPost, "/v1/users/"+acct.ID.String()+"/disable", nil, nil), http.StatusAccepted)
		// At once: no waiting for a projector.
		for _, tok := range []stacktest.Tokens{one, two} {
			wantRefreshRefused(t, s, tok.RefreshToken)
			wantUnauthenticated(t, s.Do(t, tok.AccessToken, http.MethodGet, "/v1/users/me", nil, nil))
		}
		r := s.Do(t, "", http.MethodPost, "/v1/auth/login", map[string]string{"email": acct.Email, "password": acct.Password}, nil)
		wantProblem(t, r, http.StatusUnauthorized, "unauthenticated")

		// Enabling the user again does not revive the ended sessions.
		wantStatus(t, s.Do(t, adminTok, http.MethodPost, "/v1/users/"+acct.ID.String()+"/enable", nil, nil), http.StatusAccepted)
		wantRefreshRefused(t, s, two.RefreshToken)
		wantUnauthenticated(t, s.Do(t, two.AccessToken, http.MethodGet, "/v1/users/me", nil, nil))
		wantStatus(t, s.Do(t, s.Login(t, acct).AccessToken, http.MethodGet, "/v1/users/me", nil, nil), http.StatusOK)
	})

	t.Run("session list and revocation", func(t *testing.T) {
		acct := s.User(t, tenant, auth.RoleViewer)
		laptop := s.Login(t, acct)
		var phone stacktest.Tokens
		wantStatus(t, s.Do(t, "", http.MethodPost, "/v1/auth/login", map[string]string{"email": acct.Email, "password": acct.Password},
			&phone, "User-Agent", "phone/1.0"), http.StatusOK)
		laptopID, phoneID := sessionOf(t, laptop.AccessToken), sessionOf(t, phone.AccessToken)

		list := sessions(t, s, laptop.AccessToken)
		if len(list) != 2 {
			t.Fatalf("sessions = %+v, want 2", list)
		}
		for _, it := range list {
			switch it.ID {
			case laptopID:
				if !it.Current {
					t.Fatalf("the calling session is not current: %+v", it)
				}
			case phoneID:
				if it.Current || it.UserAgent != "phone/1.0" || it.IP != "127.0.0.1" {
					t.Fatalf("the other session = %+v", it)
				}
			default:
				t.Fatalf("unknown session %+v", it)
			}
		}
		// Seen from the phone, the phone is current.
		for _, it := range sessions(t, s, phone.AccessToken) {
			if it.Current != (it.ID == phoneID) {
				t.Fatalf("from the phone: %+v", it)
			}
		}

		wantStatus(t, s.Do(t, laptop.AccessToken, http.MethodDelete, "/v1/sessions/"+phoneID.String(), nil, nil), http.StatusNoContent)
		wantUnauthenticated(t, s.Do(t, phone.AccessToken, http.MethodGet, "/v1/users/me", nil, nil))
		wantRefreshRefused(t, s, phone.RefreshToken)
		list = sessions(t, s, laptop.AccessToken)
		if len(list) != 1 || list[0].ID != laptopID || !list[0].Current {
			t.Fatalf("after revoking the phone: %+v", list)
		}
		// The laptop session is unaffected and still refreshes.
		_, r := refresh(t, s, laptop.RefreshToken)
		wantStatus(t, r, http.StatusOK)
	})
}
