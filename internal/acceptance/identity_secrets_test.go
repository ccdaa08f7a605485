package acceptance_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/google/uuid"
	"github.com/oauth2-proxy/mockoidc"
)

// TestIdentityEventsHoldNoSecret (issue 12, item 4): every identity fact is
// an event — an API token created, first used and revoked; TOTP enabled, a
// recovery code used, TOTP disabled; a single sign-on with its provider and
// subject — and no event, in its data or its metadata, holds any secret
// those steps handled: API tokens and their hashes, TOTP secrets, recovery
// codes, the MFA token, access and refresh tokens, the provider's client
// secret.
func TestIdentityEventsHoldNoSecret(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{DevLoopbackHTTP: true})
	d := openDB(t, s)
	p := startIDP(t)
	tenant := s.Tenant(t, "secrets")
	acct := s.User(t, tenant, auth.RoleTenantAdmin)
	login := s.Login(t, acct)
	session := login.AccessToken
	var secrets []string
	keep := func(v ...string) { secrets = append(secrets, v...) }
	keep(login.AccessToken, login.RefreshToken)

	// API token: created, used (first use), revoked.
	tok := createToken(t, s, session, map[string]any{"name": "ci", "permissions": []string{"vm:read"}})
	sum := sha256.Sum256([]byte(tok.Token))
	keep(tok.Token, tok.Token[12:], hex.EncodeToString(sum[:]))
	wantStatus(t, s.Do(t, tok.Token, http.MethodGet, "/v1/vms", nil, nil), http.StatusOK)
	wantStatus(t, s.Do(t, session, http.MethodDelete, "/v1/users/me/tokens/"+tok.ID.String(), nil, nil), http.StatusAccepted)

	// TOTP: enabled, a sign-in with a recovery code, disabled.
	secret, step, recovery := enrolTOTP(t, s, session)
	keep(secret)
	keep(recovery...)
	l := loginMFA(t, s, acct)
	keep(l.MFAToken)
	var second mfaLogin
	r := mfaStep(t, s, l.MFAToken, map[string]string{"recovery_code": recovery[0]})
	wantStatus(t, r, http.StatusOK)
	if err := decodeBody(r, &second); err != nil {
		t.Fatal(err)
	}
	keep(second.AccessToken, second.RefreshToken)
	wantStatus(t, s.Do(t, session, http.MethodDelete, "/v1/users/me/totp", map[string]string{"code": totpCode(t, secret, step+1)}, nil), http.StatusAccepted)

	// Single sign-on.
	pa := s.Login(t, s.User(t, uuidPlatform(), auth.RolePlatformAdmin)).AccessToken
	var acc accepted
	wantStatus(t, s.Do(t, pa, http.MethodPost, "/v1/identity-providers", map[string]any{"name": "IdP", "issuer": p.Issuer(),
		"client_id": p.ClientID, "client_secret": p.ClientSecret, "scopes": []string{"email", "groups"}, "create_users": true,
		"mappings": []map[string]any{{"group": "ops", "tenant_id": tenant, "roles": []string{"viewer"}}}}, &acc), http.StatusAccepted)
	keep(p.ClientSecret)
	subject := "sub-" + uuid.NewString()
	keep(ssoSignIn(t, s, p, acc.ID, &mockoidc.MockUser{Subject: subject, Email: newEmail(), EmailVerified: true, Groups: []string{"ops"}}))

	for typ, n := range map[string]int{"api_token_created": 1, "api_token_first_used": 1, "api_token_revoked": 1,
		"user_totp_enabled": 1, "user_recovery_code_used": 1, "user_totp_disabled": 1, "identity_provider_configured": 1} {
		if got := d.count(t, `SELECT count(*) FROM events WHERE event_type = $1`, typ); got != n {
			t.Errorf("%s events: %d, want %d", typ, got, n)
		}
	}
	if evs := revealedWhere(t, s, d, `event_type = 'oidc_signed_in' AND data->>'provider_id' = $1`, acc.ID.String()); len(evs) != 1 ||
		!strings.Contains(string(evs[0].Data), `"subject":"`+subject+`"`) {
		t.Errorf("oidc_signed_in with provider and subject: %+v", evs)
	}
	if len(secrets) < 20 {
		t.Fatalf("only %d secrets collected", len(secrets))
	}
	for _, sec := range secrets {
		if len(sec) < 12 {
			t.Fatalf("secret %q too short to search for", sec)
		}
		for _, needle := range []string{sec, strings.ReplaceAll(sec, "-", "")} {
			if n := d.count(t, `SELECT count(*) FROM events WHERE data::text ILIKE '%' || $1 || '%' OR metadata::text ILIKE '%' || $1 || '%'`, needle); n != 0 {
				t.Errorf("%d events hold a secret (%.6s…)", n, sec)
			}
		}
	}
}
