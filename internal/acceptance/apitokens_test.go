package acceptance_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/google/uuid"
)

var apiTokenPattern = regexp.MustCompile(`^adb_[0-9A-Za-z]{42}$`)

type createdToken struct {
	ID          uuid.UUID `json:"id"`
	Token       string    `json:"token"`
	Name        string    `json:"name"`
	Permissions []string  `json:"permissions"`
	ExpiresAt   time.Time `json:"expires_at"`
}

type tokenListItem struct {
	ID          uuid.UUID  `json:"id"`
	Name        string     `json:"name"`
	Prefix      string     `json:"prefix"`
	Permissions []string   `json:"permissions"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
	LastUsedIP  *string    `json:"last_used_ip"`
}

func createToken(t *testing.T, s *stacktest.Stack, session string, body map[string]any) createdToken {
	t.Helper()
	var c createdToken
	r := s.Do(t, session, http.MethodPost, "/v1/users/me/tokens", body, &c)
	wantStatus(t, r, http.StatusCreated)
	if !apiTokenPattern.MatchString(c.Token) || c.ID == uuid.Nil {
		t.Fatalf("created token %+v", c)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	return c
}

func listTokens(t *testing.T, s *stacktest.Stack, session, path string) []tokenListItem {
	t.Helper()
	var out struct {
		Items []tokenListItem `json:"items"`
	}
	wantStatus(t, s.Do(t, session, http.MethodGet, path, nil, &out), http.StatusOK)
	return out.Items
}

func permissionsOf(t *testing.T, s *stacktest.Stack, token string) []string {
	t.Helper()
	var me struct {
		Permissions []string `json:"permissions"`
	}
	wantStatus(t, s.Do(t, token, http.MethodGet, "/v1/users/me", nil, &me), http.StatusOK)
	return me.Permissions
}

// TestAPITokens covers issue 12's API tokens over HTTP: the secret answered
// once in its scanner-friendly shape, use on ordinary routes with the
// intersection of the token's and the user's permissions (a demotion
// shrinks it at once), the routes a token may not use, bad input, the
// first use recorded once and later uses batched, revocation by the user
// and by an administrator, and another tenant.
func TestAPITokens(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	tenant := s.Tenant(t, "tokens")
	adminAcct := s.User(t, tenant, auth.RoleTenantAdmin)
	admin := s.Login(t, adminAcct).AccessToken
	opsAcct := s.User(t, tenant, auth.RoleTenantAdmin)
	ops := s.Login(t, opsAcct).AccessToken
	viewer := s.Login(t, s.User(t, tenant, auth.RoleViewer)).AccessToken
	otherAdmin := s.Login(t, s.User(t, s.Tenant(t, "tokens-other"), auth.RoleTenantAdmin)).AccessToken

	exp := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	ci := createToken(t, s, admin, map[string]any{"name": "ci", "permissions": []string{"vm:read", "user:read"}, "expires_at": exp})
	if ci.Name != "ci" || !slices.Equal(ci.Permissions, []string{"user:read", "vm:read"}) || !ci.ExpiresAt.Equal(exp) {
		t.Fatalf("created %+v", ci)
	}

	t.Run("the token works with its permissions only", func(t *testing.T) {
		wantStatus(t, s.Do(t, ci.Token, http.MethodGet, "/v1/vms", nil, nil), http.StatusOK)
		wantStatus(t, s.Do(t, ci.Token, http.MethodGet, "/v1/users", nil, nil), http.StatusOK)
		wantProblem(t, s.Do(t, ci.Token, http.MethodPost, "/v1/vms", map[string]any{"name": "x", "kind": "qemu", "cores": 1,
			"memory_mb": 512, "disk_gb": 8, "template": "debian-12"}, nil), http.StatusForbidden, "forbidden")
		wantProblem(t, s.Do(t, ci.Token, http.MethodGet, "/v1/audit", nil, nil), http.StatusForbidden, "forbidden")
		if got := permissionsOf(t, s, ci.Token); !slices.Equal(got, []string{"user:read", "vm:read"}) {
			t.Fatalf("permissions of the token = %v", got)
		}
	})

	t.Run("a token cannot manage tokens, passwords, sessions or two-factor", func(t *testing.T) {
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{http.MethodPost, "/v1/users/me/tokens", map[string]any{"name": "more", "permissions": []string{"vm:read"}}},
			{http.MethodGet, "/v1/users/me/tokens", nil},
			{http.MethodDelete, "/v1/users/me/tokens/" + ci.ID.String(), nil},
			{http.MethodPut, "/v1/users/" + adminAcct.ID.String() + "/password", map[string]any{"current_password": adminAcct.Password, "new_password": strongPassword}},
			{http.MethodPost, "/v1/auth/logout", nil},
			{http.MethodDelete, "/v1/sessions/" + uuid.NewString(), nil},
			{http.MethodGet, "/v1/users/me/totp", nil},
			{http.MethodPost, "/v1/users/me/totp", nil},
			{http.MethodPost, "/v1/users/me/totp/confirm", map[string]any{"code": "123456"}},
			{http.MethodDelete, "/v1/users/me/totp", map[string]any{"code": "123456"}},
		} {
			wantProblem(t, s.Do(t, ci.Token, c.method, c.path, c.body, nil), http.StatusForbidden, "forbidden")
		}
		// Even a token holding user:manage cannot reach other users' tokens.
		full := createToken(t, s, admin, map[string]any{"name": "full", "permissions": []string{"user:manage", "user:read"}})
		wantProblem(t, s.Do(t, full.Token, http.MethodGet, "/v1/users/"+opsAcct.ID.String()+"/tokens", nil, nil), http.StatusForbidden, "forbidden")
		// Nor the tenant's two-factor requirement.
		wantProblem(t, s.Do(t, full.Token, http.MethodPut, "/v1/mfa-requirement", map[string]bool{"required": true}, nil), http.StatusForbidden, "forbidden")
		wantStatus(t, s.Do(t, admin, http.MethodDelete, "/v1/users/me/tokens/"+full.ID.String(), nil, nil), http.StatusAccepted)
	})

	t.Run("bad input is refused and records nothing", func(t *testing.T) {
		before := d.events(t)
		for field, body := range map[string]map[string]any{
			"expires_at":   {"name": "x", "permissions": []string{"vm:read"}, "expires_at": time.Now().Add(-time.Minute)},
			"expires_at ":  {"name": "x", "permissions": []string{"vm:read"}, "expires_at": time.Now().Add(367 * 24 * time.Hour)},
			"permissions":  {"name": "x", "permissions": []string{"vm:fly"}},
			"name":         {"name": " ", "permissions": []string{"vm:read"}},
			"permissions ": {"name": "x", "permissions": []string{}},
		} {
			p := wantProblem(t, s.Do(t, admin, http.MethodPost, "/v1/users/me/tokens", body, nil), http.StatusBadRequest, "validation_failed")
			if _, ok := fieldErrors(t, p)[strings.TrimSpace(field)]; !ok {
				t.Errorf("%s: not named: %v", field, p)
			}
		}
		// A permission the caller does not hold: 403.
		wantProblem(t, s.Do(t, admin, http.MethodPost, "/v1/users/me/tokens",
			map[string]any{"name": "x", "permissions": []string{"vm:read", "tenant:manage"}}, nil), http.StatusForbidden, "forbidden")
		wantProblem(t, s.Do(t, viewer, http.MethodPost, "/v1/users/me/tokens",
			map[string]any{"name": "x", "permissions": []string{"vm:power"}}, nil), http.StatusForbidden, "forbidden")
		if after := d.events(t); after != before {
			t.Fatalf("refused requests appended %d events", after-before)
		}
		if n := d.count(t, `SELECT count(*) FROM api_tokens WHERE user_id = $1`, adminAcct.ID); n != 2 {
			t.Fatalf("token rows of the admin: %d, want 2", n)
		}
	})

	t.Run("malformed and unknown tokens are 401", func(t *testing.T) {
		b := []byte(ci.Token)
		b[10] ^= 1 // still base62, checksum now wrong
		forged := "adb_" + strings.Repeat("A", 42)
		for _, tok := range []string{string(b), forged, ci.Token[:20], "adb_"} {
			wantProblem(t, s.Do(t, tok, http.MethodGet, "/v1/vms", nil, nil), http.StatusUnauthorized, "unauthenticated")
		}
	})

	t.Run("first use is one event, later uses are batched", func(t *testing.T) {
		for range 3 {
			wantStatus(t, s.Do(t, ci.Token, http.MethodGet, "/v1/vms", nil, nil), http.StatusOK)
		}
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'api_token_first_used' AND stream_id = $1`,
			"api_token-"+ci.ID.String()); n != 1 {
			t.Fatalf("api_token_first_used events: %d, want 1", n)
		}
		// Requests made with the token say so in their events' metadata.
		wantProblem(t, s.Do(t, ci.Token, http.MethodGet, "/v1/audit", nil, nil), http.StatusForbidden, "forbidden")
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'access_denied' AND metadata->>'api_token_id' = $1`, ci.ID.String()); n < 1 {
			t.Fatal("the denied request's event does not name the token")
		}
		items := listTokens(t, s, admin, "/v1/users/me/tokens")
		if len(items) != 1 {
			t.Fatalf("tokens = %+v", items)
		}
		it := items[0]
		if it.ID != ci.ID || it.Prefix != ci.Token[:12] || it.Name != "ci" || it.LastUsedAt == nil || it.LastUsedIP == nil ||
			*it.LastUsedIP != "127.0.0.1" || it.CreatedAt.IsZero() || !it.ExpiresAt.Equal(exp) {
			t.Fatalf("listed %+v", it)
		}
	})

	opsTok := createToken(t, s, ops, map[string]any{"name": "deploy", "permissions": []string{"vm:read", "user:read", "vm:power"}})
	wantStatus(t, s.Do(t, opsTok.Token, http.MethodGet, "/v1/users", nil, nil), http.StatusOK)

	t.Run("a demotion shrinks the user's tokens at once", func(t *testing.T) {
		wantStatus(t, s.Do(t, admin, http.MethodPut, "/v1/users/"+opsAcct.ID.String()+"/roles", map[string]any{"roles": []string{"operator"}}, nil), http.StatusAccepted)
		wantProblem(t, s.Do(t, opsTok.Token, http.MethodGet, "/v1/users", nil, nil), http.StatusForbidden, "forbidden")
		if got := permissionsOf(t, s, opsTok.Token); !slices.Equal(got, []string{"vm:power", "vm:read"}) {
			t.Fatalf("permissions after the demotion = %v", got)
		}
	})

	t.Run("administrators list and revoke their users' tokens", func(t *testing.T) {
		items := listTokens(t, s, admin, "/v1/users/"+opsAcct.ID.String()+"/tokens")
		if len(items) != 1 || items[0].ID != opsTok.ID {
			t.Fatalf("ops's tokens = %+v", items)
		}
		wantProblem(t, s.Do(t, viewer, http.MethodGet, "/v1/users/"+opsAcct.ID.String()+"/tokens", nil, nil), http.StatusForbidden, "forbidden")
		wantProblem(t, s.Do(t, otherAdmin, http.MethodGet, "/v1/users/"+opsAcct.ID.String()+"/tokens", nil, nil), http.StatusNotFound, "not_found")
		wantProblem(t, s.Do(t, otherAdmin, http.MethodDelete, "/v1/users/"+opsAcct.ID.String()+"/tokens/"+opsTok.ID.String(), nil, nil), http.StatusNotFound, "not_found")
		wantProblem(t, s.Do(t, ops, http.MethodDelete, "/v1/users/me/tokens/"+ci.ID.String(), nil, nil), http.StatusNotFound, "not_found")
		wantProblem(t, s.Do(t, admin, http.MethodDelete, "/v1/users/"+adminAcct.ID.String()+"/tokens/"+opsTok.ID.String(), nil, nil), http.StatusNotFound, "not_found")
		wantStatus(t, s.Do(t, opsTok.Token, http.MethodGet, "/v1/vms", nil, nil), http.StatusOK)

		wantStatus(t, s.Do(t, admin, http.MethodDelete, "/v1/users/"+opsAcct.ID.String()+"/tokens/"+opsTok.ID.String(), nil, nil), http.StatusAccepted)
		wantProblem(t, s.Do(t, opsTok.Token, http.MethodGet, "/v1/vms", nil, nil), http.StatusUnauthorized, "unauthenticated")
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'api_token_revoked' AND data->>'reason' = 'revoked_by_admin'
			AND stream_id = $1`, "api_token-"+opsTok.ID.String()); n != 1 {
			t.Fatalf("revoked_by_admin events: %d", n)
		}
		if items := listTokens(t, s, ops, "/v1/users/me/tokens"); len(items) != 0 {
			t.Fatalf("a revoked token is listed: %+v", items)
		}
	})

	t.Run("a disabled user's tokens stop working", func(t *testing.T) {
		second := createToken(t, s, ops, map[string]any{"name": "second", "permissions": []string{"vm:read"}})
		wantStatus(t, s.Do(t, second.Token, http.MethodGet, "/v1/vms", nil, nil), http.StatusOK)
		wantStatus(t, s.Do(t, admin, http.MethodPost, "/v1/users/"+opsAcct.ID.String()+"/disable", nil, nil), http.StatusAccepted)
		wantProblem(t, s.Do(t, second.Token, http.MethodGet, "/v1/vms", nil, nil), http.StatusUnauthorized, "unauthenticated")
	})

	t.Run("an expired token is 401", func(t *testing.T) {
		short := createToken(t, s, admin, map[string]any{"name": "short", "permissions": []string{"vm:read"}})
		wantStatus(t, s.Do(t, short.Token, http.MethodGet, "/v1/vms", nil, nil), http.StatusOK)
		if _, err := d.conn.Exec(context.Background(), `UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE token_id = $1`, short.ID); err != nil {
			t.Fatal(err)
		}
		wantProblem(t, s.Do(t, short.Token, http.MethodGet, "/v1/vms", nil, nil), http.StatusUnauthorized, "unauthenticated")
		wantStatus(t, s.Do(t, admin, http.MethodDelete, "/v1/users/me/tokens/"+short.ID.String(), nil, nil), http.StatusAccepted)
	})

	t.Run("the user revokes their own token", func(t *testing.T) {
		wantStatus(t, s.Do(t, admin, http.MethodDelete, "/v1/users/me/tokens/"+ci.ID.String(), nil, nil), http.StatusAccepted)
		wantProblem(t, s.Do(t, ci.Token, http.MethodGet, "/v1/vms", nil, nil), http.StatusUnauthorized, "unauthenticated")
	})

	t.Run("no event and no row holds a token's secret", func(t *testing.T) {
		for _, tok := range []string{ci.Token, opsTok.Token} {
			sum := sha256.Sum256([]byte(tok))
			for _, needle := range []string{tok, tok[12:], hex.EncodeToString(sum[:])} {
				if n := d.count(t, `SELECT count(*) FROM events WHERE data::text LIKE '%' || $1 || '%' OR metadata::text LIKE '%' || $1 || '%'`, needle); n != 0 {
					t.Fatalf("%d events hold a token's secret or hash", n)
				}
			}
			if n := d.count(t, `SELECT count(*) FROM api_tokens WHERE prefix = $1 AND token_hash = $2`, tok[:12], sum[:]); n != 1 {
				t.Fatalf("the token's row holds its hash and prefix: %d", n)
			}
		}
	})
}
