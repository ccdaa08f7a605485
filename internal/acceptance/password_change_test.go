package acceptance_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/stacktest"
)

func changePassword(t *testing.T, s *stacktest.Stack, token string, a stacktest.Account, current, next string, headers ...string) stacktest.Response {
	t.Helper()
	body := map[string]any{"password": next}
	if current != "" {
		body["current_password"] = current
	}
	return s.Do(t, token, http.MethodPut, "/v1/users/"+a.ID.String()+"/password", body, nil, headers...)
}

// TestPasswordChangeEndsOtherSessions: whoever held the user's tokens is
// out once the password changes. A user changing their own keeps the
// session they changed it from; an administrator's reset ends them all.
func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	tenant := s.Tenant(t, "pw-sessions")
	admin := s.User(t, tenant, auth.RoleTenantAdmin)
	u := s.User(t, tenant, auth.RoleViewer)
	here, elsewhere := s.Login(t, u), s.Login(t, u)
	me := func(tok string) stacktest.Response { return s.Do(t, tok, http.MethodGet, "/v1/users/me", nil, nil) }

	next := strongPassword + " changed"
	wantStatus(t, changePassword(t, s, here.AccessToken, u, u.Password, next), http.StatusAccepted)
	wantProblem(t, me(elsewhere.AccessToken), http.StatusUnauthorized, "unauthenticated")
	wantRefreshRefused(t, s, elsewhere.RefreshToken)
	wantStatus(t, me(here.AccessToken), http.StatusOK)
	kept, r := refresh(t, s, here.RefreshToken)
	wantStatus(t, r, http.StatusOK)
	if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'user_sessions_ended' AND stream_id = $1
		AND data->>'reason' = 'password_changed' AND data->>'kept_session_id' = $2`,
		"user-"+u.ID.String(), sessionOf(t, here.AccessToken).String()); n != 1 {
		t.Fatalf("%d user_sessions_ended events keeping the changing session, want 1", n)
	}

	// An administrator's reset: every session of the user ends.
	u.Password = next
	again := s.Login(t, u)
	wantStatus(t, changePassword(t, s, s.Login(t, admin).AccessToken, u, "", strongPassword+" reset"), http.StatusAccepted)
	for _, tok := range []stacktest.Tokens{kept, again} {
		wantProblem(t, me(tok.AccessToken), http.StatusUnauthorized, "unauthenticated")
		wantRefreshRefused(t, s, tok.RefreshToken)
	}
	wantProblem(t, login(t, s, u.Email, next), http.StatusUnauthorized, "unauthenticated")
	wantStatus(t, login(t, s, u.Email, strongPassword+" reset"), http.StatusOK)
}

// TestCurrentPasswordIsThrottledLikeALogin: the current_password of a
// password change is a password guess; wrong ones count against the
// account's sign-in throttle, are recorded, and lock both the change and
// the sign-in after as many failures as a login.
func TestCurrentPasswordIsThrottledLikeALogin(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	tenant := s.Tenant(t, "pw-oracle")
	u := s.User(t, tenant, auth.RoleViewer)
	tok := s.Login(t, u).AccessToken
	next := strongPassword + " next"
	for i := range auth.DefaultThrottleMaxFailures {
		r := changePassword(t, s, tok, u, "wrong guess "+strconv.Itoa(i), next)
		if _, ok := fieldErrors(t, wantProblem(t, r, http.StatusBadRequest, "validation_failed"))["current_password"]; !ok {
			t.Fatalf("a wrong current password answered %s", r.Body)
		}
	}
	// Locked: even the right current password waits, and so does sign-in.
	wantRetryAfter(t, changePassword(t, s, tok, u, u.Password, next))
	wantRetryAfter(t, login(t, s, u.Email, u.Password))
	if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'password_check_failed' AND tenant_id = $1 AND actor_id = $2
		AND data->>'reason' = 'bad_current_password' AND data->>'user_id' = $3`, tenant, u.ID, u.ID.String()); n != auth.DefaultThrottleMaxFailures {
		t.Fatalf("%d bad_current_password events, want %d", n, auth.DefaultThrottleMaxFailures)
	}
	if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'password_check_failed' AND actor_id = $1
		AND data->>'reason' = 'throttled'`, u.ID); n != 1 {
		t.Fatalf("%d throttled password checks recorded, want 1", n)
	}
	if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'user_password_changed' AND stream_id = $1`, "user-"+u.ID.String()); n != 0 {
		t.Fatalf("the password changed %d times", n)
	}
}
