package acceptance_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// TestForgedAndInvalidTokens presents access tokens that must not work to an
// authenticated route: every one is a 401 unauthenticated problem with a
// WWW-Authenticate challenge, never a 500 and never a pass.
func TestForgedAndInvalidTokens(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	tenant := s.Tenant(t, "jwt")
	acct := s.User(t, tenant, auth.RoleViewer)
	valid := s.Login(t, acct).AccessToken
	wantStatus(t, s.Do(t, valid, http.MethodGet, "/v1/users/me", nil, nil), http.StatusOK)

	good := claimsOf(t, valid)
	kid := s.Keys.CurrentKeyID()
	pub, ok := s.Keys.PublicKey(kid)
	if !ok {
		t.Fatal("current key has no public key")
	}
	now := time.Now()
	// claims returns a copy of the valid token's claims for editing.
	claims := func(edit func(c *auth.Claims)) *auth.Claims {
		c := *good
		c.Audience = append(jwt.ClaimStrings(nil), good.Audience...)
		edit(&c)
		return &c
	}
	sign := func(c jwt.Claims, key ed25519.PrivateKey, kid string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		out, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// The stack's own key signs correctly shaped tokens: only their claims are wrong.
	signOwn := func(edit func(c *auth.Claims)) string { return sign(claims(edit), s.SigningKey, kid) }

	parts := strings.Split(valid, ".")
	header, payload, sig := parts[0], parts[1], parts[2]

	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(func(*auth.Claims) {})).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	// HS256 keyed with the Ed25519 public key: the classic algorithm confusion.
	hsHeader := b64(map[string]string{"alg": "HS256", "typ": "JWT", "kid": kid})
	mac := hmac.New(sha256.New, pub)
	mac.Write([]byte(hsHeader + "." + payload))
	hsTok := hsHeader + "." + payload + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	// The payload raised to platform_admin, the original signature kept.
	elevated := claims(func(c *auth.Claims) { c.Roles = []string{auth.RolePlatformAdmin} })
	tampered := header + "." + b64(elevated) + "." + sig

	_, otherKey, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	noExp := map[string]any{"iss": good.Issuer, "aud": []string(good.Audience), "sub": good.Subject, "iat": now.Unix(),
		"nbf": now.Unix(), "jti": uuid.NewString(), "tid": good.TenantID, "sid": good.SessionID, "roles": good.Roles}

	// Controls: the forging helpers make working tokens when nothing is
	// wrong, so each case below fails for its one defect.
	wantStatus(t, s.Do(t, signOwn(func(*auth.Claims) {}), http.MethodGet, "/v1/users/me", nil, nil), http.StatusOK)
	withExp := map[string]any{"exp": now.Add(time.Minute).Unix()}
	for k, v := range noExp {
		withExp[k] = v
	}
	wantStatus(t, s.Do(t, sign(jwt.MapClaims(withExp), s.SigningKey, kid), http.MethodGet, "/v1/users/me", nil, nil), http.StatusOK)

	cases := []struct{ name, header string }{
		{"no token", ""},
		{"empty bearer", "Bearer "},
		{"other scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("a:b"))},
		{"lower-case scheme", "bearer " + valid},
		{"alg none", "Bearer " + noneTok},
		{"alg none, signature stripped", "Bearer " + b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + payload + "."},
		{"HS256 with the public key", "Bearer " + hsTok},
		{"tampered payload", "Bearer " + tampered},
		{"tampered signature", "Bearer " + header + "." + payload + "." + strings.Repeat("A", len(sig))},
		{"expired", "Bearer " + signOwn(func(c *auth.Claims) {
			c.IssuedAt, c.NotBefore = jwt.NewNumericDate(now.Add(-2*time.Hour)), jwt.NewNumericDate(now.Add(-2*time.Hour))
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour))
		})},
		{"not yet valid", "Bearer " + signOwn(func(c *auth.Claims) {
			c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour))
			c.ExpiresAt = jwt.NewNumericDate(now.Add(2 * time.Hour))
		})},
		{"issued in the future", "Bearer " + signOwn(func(c *auth.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour)) })},
		{"wrong aud", "Bearer " + signOwn(func(c *auth.Claims) { c.Audience = jwt.ClaimStrings{"another-api"} })},
		{"no aud", "Bearer " + signOwn(func(c *auth.Claims) { c.Audience = nil })},
		{"wrong iss", "Bearer " + signOwn(func(c *auth.Claims) { c.Issuer = "https://evil.example" })},
		{"missing exp", "Bearer " + sign(jwt.MapClaims(noExp), s.SigningKey, kid)},
		{"unknown kid", "Bearer " + sign(claims(func(*auth.Claims) {}), s.SigningKey, "not-a-known-kid")},
		{"no kid", "Bearer " + sign(claims(func(*auth.Claims) {}), s.SigningKey, "")},
		{"another key, its own kid", "Bearer " + sign(claims(func(*auth.Claims) {}), otherKey, auth.KeyID(otherKey.Public().(ed25519.PublicKey)))},
		{"another key, the stack's kid", "Bearer " + sign(claims(func(*auth.Claims) {}), otherKey, kid)},
		{"unknown session", "Bearer " + signOwn(func(c *auth.Claims) { c.SessionID = uuid.NewString() })},
		{"another tenant, same session", "Bearer " + signOwn(func(c *auth.Claims) { c.TenantID = uuid.NewString() })},
		{"sub not a UUID", "Bearer " + signOwn(func(c *auth.Claims) { c.Subject = "admin" })},
		{"two segments", "Bearer " + header + "." + payload},
		{"four segments", "Bearer " + valid + "." + sig},
		{"garbage", "Bearer " + strings.Repeat("x", 100)},
		{"100 KB of dots", "Bearer " + strings.Repeat(".", 100<<10)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r stacktest.Response
			if c.header == "" {
				r = s.Do(t, "", http.MethodGet, "/v1/users/me", nil, nil)
			} else {
				r = s.Do(t, "", http.MethodGet, "/v1/users/me", nil, nil, "Authorization", c.header)
			}
			wantUnauthenticated(t, r)
		})
	}

	t.Run("two Authorization headers", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, s.URL+"/v1/users/me", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Add("Authorization", "Bearer "+valid)
		req.Header.Add("Authorization", "Bearer "+valid)
		wantUnauthenticated(t, send(t, req))
	})

	t.Run("1 MB of dots", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, s.URL+"/v1/users/me", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.Repeat(".", 1<<20))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			// The server may answer 431 and close before the client has
			// written the whole header: a reset is a refusal too.
			if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
				return
			}
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusRequestHeaderFieldsTooLarge:
		default:
			t.Fatalf("status %d, want 401, 413 or 431", resp.StatusCode)
		}
	})

	// The valid token still works; after logout it does not.
	wantStatus(t, s.Do(t, valid, http.MethodGet, "/v1/users/me", nil, nil), http.StatusOK)
	wantStatus(t, s.Do(t, valid, http.MethodPost, "/v1/auth/logout", nil, nil), http.StatusNoContent)
	wantUnauthenticated(t, s.Do(t, valid, http.MethodGet, "/v1/users/me", nil, nil))
	wantUnauthenticated(t, s.Do(t, valid, http.MethodPost, "/v1/auth/logout", nil, nil))
}

// wantUnauthenticated asserts a 401 unauthenticated problem with a Bearer
// challenge.
func wantUnauthenticated(t *testing.T, r stacktest.Response) {
	t.Helper()
	wantProblem(t, r, http.StatusUnauthorized, "unauthenticated")
	if ch := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer") {
		t.Fatalf("WWW-Authenticate = %q, want a Bearer challenge", ch)
	}
}

// send does a prepared request and reads its answer.
func send(t *testing.T, req *http.Request) stacktest.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return stacktest.Response{Response: resp, Body: body}
}
