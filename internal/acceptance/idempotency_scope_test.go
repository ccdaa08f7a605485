package acceptance_test

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
)

// TestIdempotencyKeyFingerprintsTheWholeRequest: a key reused for a request
// that differs only in its query string (the tenant a platform
// administrator acts on) or in a password is refused, never answered with
// the first request's result; and no password reaches the commands table
// or the log in clear, nor as an unkeyed hash.
func TestIdempotencyKeyFingerprintsTheWholeRequest(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	a, b := s.Tenant(t, "idem-a"), s.Tenant(t, "idem-b")
	paTok := s.Login(t, s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)).AccessToken

	t.Run("the query string", func(t *testing.T) {
		body := newUserBody(newEmail(), auth.RoleViewer)
		wantStatus(t, s.Do(t, paTok, http.MethodPost, "/v1/users?tenant_id="+a.String(), body, nil, "Idempotency-Key", "q-1"),
			http.StatusAccepted)
		before := d.events(t)
		wantProblem(t, s.Do(t, paTok, http.MethodPost, "/v1/users?tenant_id="+b.String(), body, nil, "Idempotency-Key", "q-1"),
			http.StatusUnprocessableEntity, "idempotency_mismatch")
		if d.events(t) != before {
			t.Fatal("a mismatched idempotency key wrote events")
		}
		wantStatus(t, s.Do(t, paTok, http.MethodPost, "/v1/users?tenant_id="+a.String(), body, nil, "Idempotency-Key", "q-1"),
			http.StatusAccepted)
		if d.events(t) != before {
			t.Fatal("a repeat wrote events")
		}
	})

	t.Run("the password", func(t *testing.T) {
		u := s.User(t, a, auth.RoleViewer)
		tok := s.Login(t, u).AccessToken
		first, second := "first new password 1", "second new password 2"
		r := changePassword(t, s, tok, u, u.Password, first, "Idempotency-Key", "pw-1")
		wantStatus(t, r, http.StatusAccepted)
		wantProblem(t, changePassword(t, s, tok, u, u.Password, second, "Idempotency-Key", "pw-1"),
			http.StatusUnprocessableEntity, "idempotency_mismatch")
		again := changePassword(t, s, tok, u, u.Password, first, "Idempotency-Key", "pw-1")
		wantStatus(t, again, http.StatusAccepted)
		if again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("the identical repeat was not a replay: %v", again.Header)
		}
		wantProblem(t, login(t, s, u.Email, second), http.StatusUnauthorized, "unauthenticated")
		wantStatus(t, login(t, s, u.Email, first), http.StatusOK)

		// In clear nowhere; and the stored fingerprint is not a hash anyone
		// could recompute from a guess.
		var acc accepted
		if err := json.Unmarshal(r.Body, &acc); err != nil {
			t.Fatal(err)
		}
		for _, pw := range []string{u.Password, first, second} {
			if n := d.count(t, `SELECT (SELECT count(*) FROM commands c WHERE c::text LIKE '%' || $1 || '%')
				+ (SELECT count(*) FROM events e WHERE e.data::text LIKE '%' || $1 || '%' OR e.metadata::text LIKE '%' || $1 || '%')`, pw); n != 0 {
				t.Fatalf("a password is stored in clear in %d rows", n)
			}
		}
		body, err := json.Marshal(map[string]any{"password": first, "current_password": u.Password})
		if err != nil {
			t.Fatal(err)
		}
		path := "/v1/users/" + u.ID.String() + "/password"
		for _, material := range [][]byte{
			append([]byte(http.MethodPut+" "+path+"\n"), body...),
			append([]byte(http.MethodPut+" "+path+"?\n"), body...),
			[]byte(first),
		} {
			sum := sha256.Sum256(material)
			if n := d.count(t, `SELECT count(*) FROM commands WHERE request_hash = $1`, sum[:]); n != 0 {
				t.Fatalf("the request fingerprint is an unkeyed SHA-256 of %q", material)
			}
		}
		if n := d.count(t, `SELECT count(*) FROM commands WHERE last_position = $1 AND length(request_hash) = 32`, acc.Position); n != 1 {
			t.Fatalf("%d commands rows with a 32-byte fingerprint for the change", n)
		}
	})
}

// TestSuspensionEndsTheTenantsSessions: a suspended tenant's existing
// access tokens no longer read (403 tenant_suspended), its refresh tokens
// no longer refresh, and its sessions stay ended after a resume.
func TestSuspensionEndsTheTenantsSessions(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	tenant := s.Tenant(t, "suspend-reads")
	u := s.User(t, tenant, auth.RoleTenantAdmin)
	tok := s.Login(t, u)
	paTok := s.Login(t, s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)).AccessToken
	reads := []string{"/v1/vms", "/v1/users", "/v1/users/me", "/v1/sessions", "/v1/audit"}
	for _, p := range reads {
		wantStatus(t, s.Do(t, tok.AccessToken, http.MethodGet, p, nil, nil), http.StatusOK)
	}
	wantStatus(t, s.Do(t, paTok, http.MethodPost, "/v1/tenants/"+tenant.String()+"/suspend", nil, nil), http.StatusAccepted)
	for _, p := range reads {
		wantProblem(t, s.Do(t, tok.AccessToken, http.MethodGet, p, nil, nil), http.StatusForbidden, "tenant_suspended")
	}
	wantRefreshRefused(t, s, tok.RefreshToken)

	wantStatus(t, s.Do(t, paTok, http.MethodPost, "/v1/tenants/"+tenant.String()+"/resume", nil, nil), http.StatusAccepted)
	wantProblem(t, s.Do(t, tok.AccessToken, http.MethodGet, "/v1/vms", nil, nil), http.StatusUnauthorized, "unauthenticated")
	wantRefreshRefused(t, s, tok.RefreshToken)
	wantStatus(t, s.Do(t, s.Login(t, u).AccessToken, http.MethodGet, "/v1/vms", nil, nil), http.StatusOK)
}
