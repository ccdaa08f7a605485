package acceptance_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
)

func login(t *testing.T, s *stacktest.Stack, email, password string, headers ...string) stacktest.Response {
	t.Helper()
	return s.Do(t, "", http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": password}, nil, headers...)
}

// withoutRequestID is a problem body minus its per-request member.
func withoutRequestID(t *testing.T, r stacktest.Response) string {
	t.Helper()
	p := r.Problem(t)
	delete(p, "request_id")
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func emailHash(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(email)))
	return hex.EncodeToString(sum[:])
}

func wantRetryAfter(t *testing.T, r stacktest.Response) {
	t.Helper()
	wantProblem(t, r, http.StatusTooManyRequests, "rate_limited")
	v, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || v < 1 {
		t.Fatalf("Retry-After = %q, want a positive number of seconds", r.Header.Get("Retry-After"))
	}
}

// TestLogin: no user enumeration, per-account throttling, and every attempt
// in the audit log with where it came from.
func TestLogin(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	tenant := s.Tenant(t, "login")
	acct := s.User(t, tenant, auth.RoleViewer)

	t.Run("unknown email and wrong password answer the same", func(t *testing.T) {
		unknown := login(t, s, newEmail(), acct.Password)
		wrong := login(t, s, acct.Email, acct.Password+"x")
		for _, r := range []stacktest.Response{unknown, wrong} {
			wantProblem(t, r, http.StatusUnauthorized, "unauthenticated")
		}
		if a, b := withoutRequestID(t, unknown), withoutRequestID(t, wrong); a != b {
			t.Fatalf("answers differ:\nunknown email:  %s\nwrong password: %s", a, b)
		}
		for _, h := range []string{"Content-Type", "WWW-Authenticate", "Retry-After", "Cache-Control"} {
			if unknown.Header.Get(h) != wrong.Header.Get(h) {
				t.Fatalf("%s differs: %q vs %q", h, unknown.Header.Get(h), wrong.Header.Get(h))
			}
		}
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'login_failed' AND tenant_id = $1 AND actor_id = $2
			AND data->>'reason' = 'bad_credentials' AND data->>'email_hash' = $3`, acct.TenantID, acct.ID, emailHash(acct.Email)); n != 1 {
			t.Fatalf("%d login_failed events for the wrong password, want 1", n)
		}
		// The address is sealed in the log (docs/PRIVACY.md); readers see it.
		evs := revealedWhere(t, s, d, `event_type = 'login_failed' AND tenant_id = $1 AND data->>'reason' = 'bad_credentials'
			AND metadata->>'client_ip' LIKE 'pii1:%'`, domain.PlatformTenant)
		if len(evs) != 1 || evs[0].Metadata.ClientIP != "127.0.0.1" {
			t.Fatalf("login_failed events for the unknown email: %+v, want 1 from 127.0.0.1", evs)
		}
	})

	t.Run("a successful login is recorded with where it came from", func(t *testing.T) {
		r := login(t, s, strings.ToUpper(acct.Email), acct.Password, "User-Agent", "acceptance-test/1.0")
		wantStatus(t, r, http.StatusOK)
		var tok stacktest.Tokens
		if err := json.Unmarshal(r.Body, &tok); err != nil {
			t.Fatal(err)
		}
		if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn <= 0 {
			t.Fatalf("login answered %s", r.Body)
		}
		evs := revealedWhere(t, s, d, `event_type = 'session_started' AND tenant_id = $1 AND actor_id = $2 AND stream_id = $3
			AND metadata->>'client_ip' LIKE 'pii1:%' AND metadata->>'user_agent' LIKE 'pii1:%'`,
			acct.TenantID, acct.ID, "session-"+sessionOf(t, tok.AccessToken).String())
		if len(evs) != 1 || evs[0].Metadata.ClientIP != "127.0.0.1" || evs[0].Metadata.UserAgent != "acceptance-test/1.0" {
			t.Fatalf("session_started events: %+v, want 1 with client_ip and user_agent", evs)
		}
	})

	t.Run("per-account throttling", func(t *testing.T) {
		victim := s.User(t, tenant, auth.RoleViewer)
		for i := range auth.DefaultThrottleMaxFailures {
			wantProblem(t, login(t, s, victim.Email, "wrong password "+strconv.Itoa(i)), http.StatusUnauthorized, "unauthenticated")
		}
		// Locked: even the right password waits, in any letter case.
		wantRetryAfter(t, login(t, s, victim.Email, victim.Password))
		wantRetryAfter(t, login(t, s, strings.ToUpper(victim.Email), victim.Password))
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'login_failed' AND actor_id = $1 AND data->>'reason' = 'bad_credentials'`,
			victim.ID); n != auth.DefaultThrottleMaxFailures {
			t.Fatalf("%d bad_credentials events, want %d", n, auth.DefaultThrottleMaxFailures)
		}
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'login_failed' AND data->>'reason' = 'throttled' AND data->>'email_hash' = $1`,
			emailHash(victim.Email)); n != 2 {
			t.Fatalf("%d throttled events, want 2", n)
		}
		// Other accounts from the same address are not locked out.
		wantStatus(t, login(t, s, acct.Email, acct.Password), http.StatusOK)
	})
}

// TestLoginThrottleSharedByReplicas: two API instances over one database
// count an account's failures together (split 3 and 2, neither alone would
// lock it), both enforce the lockout, and so does an instance started after
// it (a restart). The table knows the account only by a hash.
func TestLoginThrottleSharedByReplicas(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	replica := s.Replica(t)
	d := openDB(t, s)
	victim := s.User(t, s.Tenant(t, "replicas"), auth.RoleViewer)
	for i := range auth.DefaultThrottleMaxFailures {
		instance := []*stacktest.Stack{s, replica}[i%2]
		wantProblem(t, login(t, instance, victim.Email, "wrong password "+strconv.Itoa(i)), http.StatusUnauthorized, "unauthenticated")
	}
	wantRetryAfter(t, login(t, s, victim.Email, victim.Password))
	wantRetryAfter(t, login(t, replica, victim.Email, victim.Password))
	wantRetryAfter(t, login(t, s.Replica(t), victim.Email, victim.Password))
	if n := d.count(t, `SELECT count(*) FROM login_throttle WHERE key_hash = sha256(convert_to($1, 'UTF8')) AND lockouts = 1`,
		"acct:"+strings.ToLower(victim.Email)); n != 1 {
		t.Fatalf("%d locked rows under the hash of the account key, want 1", n)
	}
}

// TestLoginWhenTheThrottleIsUnwritable: when the throttle's table cannot be
// read or written, a login gets 503 whether its password is right or wrong
// (no uncounted guess, no oracle), and works again once the table is back.
func TestLoginWhenTheThrottleIsUnwritable(t *testing.T) {
	ctx := context.Background()
	s := stacktest.Start(t, stacktest.Options{})
	admin := s.DB.AdminConn(t)
	acct := s.User(t, s.Tenant(t, "unwritable"), auth.RoleViewer)
	exec := func(sql string) {
		t.Helper()
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	exec(`REVOKE INSERT, UPDATE, DELETE ON login_throttle FROM accountdb_app`)
	for range auth.DefaultThrottleMaxFailures + 1 {
		wantProblem(t, login(t, s, acct.Email, "wrong password"), http.StatusServiceUnavailable, "unavailable")
	}
	wantProblem(t, login(t, s, acct.Email, acct.Password), http.StatusServiceUnavailable, "unavailable")
	exec(`REVOKE SELECT ON login_throttle FROM accountdb_app`)
	wantProblem(t, login(t, s, acct.Email, acct.Password), http.StatusServiceUnavailable, "unavailable")
	exec(`GRANT SELECT, INSERT, UPDATE, DELETE ON login_throttle TO accountdb_app`)
	wantProblem(t, login(t, s, acct.Email, "wrong password"), http.StatusUnauthorized, "unauthenticated")
	wantStatus(t, login(t, s, acct.Email, acct.Password), http.StatusOK)
}

// TestPublicRateLimit: unauthenticated routes are limited per client address;
// authenticated routes have their own, per-user limits.
func TestPublicRateLimit(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{PublicRate: api.RateLimit{N: 3, Window: time.Minute}})
	tenant := s.Tenant(t, "ratelimit")
	acct := s.User(t, tenant, auth.RoleViewer)
	tok := s.Login(t, acct)                                                                               // 1
	wantProblem(t, login(t, s, acct.Email, "wrong password"), http.StatusUnauthorized, "unauthenticated") // 2
	_, r := refresh(t, s, tok.RefreshToken)                                                               // 3
	wantStatus(t, r, http.StatusOK)
	wantRetryAfter(t, login(t, s, acct.Email, acct.Password))
	_, r = refresh(t, s, "anything")
	wantRetryAfter(t, r)
	wantStatus(t, s.Do(t, tok.AccessToken, http.MethodGet, "/v1/users/me", nil, nil), http.StatusOK)
}
