package acceptance_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/oauth2-proxy/mockoidc"
)

// idp is a real OpenID Connect provider in the test's process
// (github.com/oauth2-proxy/mockoidc: discovery, authorization with PKCE,
// token, JWKS). Changes to it (a new signing key, its clock) are made
// under mu, which every request it serves takes too, so they happen
// between requests.
type idp struct {
	*mockoidc.MockOIDC
	mu        sync.RWMutex
	jwksReads atomic.Int32
	// resign, when set, re-signs the ID token the token endpoint answers
	// (its claims kept), as a provider or an attacker using another
	// algorithm would.
	resign func(claims jwt.MapClaims) string
}

func startIDP(t *testing.T) *idp {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{MockOIDC: m}
	if err := m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.mu.RLock()
			defer p.mu.RUnlock()
			if r.URL.Path == mockoidc.JWKSEndpoint {
				p.jwksReads.Add(1)
			}
			if r.URL.Path == mockoidc.TokenEndpoint && p.resign != nil {
				p.resignIDToken(w, r, next)
				return
			}
			next.ServeHTTP(w, r)
		})
	}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return p
}

// resignIDToken answers the token endpoint's answer with its ID token
// re-signed by p.resign.
func (p *idp) resignIDToken(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	var body map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	claims := jwt.MapClaims{}
	raw, _ := body["id_token"].(string)
	if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	body["id_token"] = p.resign(claims)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func (p *idp) change(f func(m *mockoidc.MockOIDC)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p.MockOIDC)
}

// audienceUser is a person whose ID token is made out to another client.
type audienceUser struct{ *mockoidc.MockUser }

func (u audienceUser) Claims(scope []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	rc := *base.RegisteredClaims
	rc.Audience = jwt.ClaimStrings{"another-client"}
	return u.MockUser.Claims(scope, &mockoidc.IDTokenClaims{Nonce: base.Nonce, RegisteredClaims: &rc})
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func browserGet(t *testing.T, u string) *http.Response {
	t.Helper()
	resp, err := noRedirects.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// ssoFlow runs the browser's part of a sign-in with user: start, the
// provider's authorization, and answers the callback URL it redirects to.
func ssoFlow(t *testing.T, s *stacktest.Stack, p *idp, provider uuid.UUID, user mockoidc.User) string {
	t.Helper()
	start := browserGet(t, s.URL+"/v1/auth/oidc/"+provider.String()+"/start")
	if start.StatusCode != http.StatusFound {
		t.Fatalf("start: %d", start.StatusCode)
	}
	authz, err := url.Parse(start.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(authz.String(), p.AuthorizationEndpoint()) {
		t.Fatalf("start redirects to %q", start.Header.Get("Location"))
	}
	q := authz.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || len(q.Get("state")) < 40 {
		t.Fatalf("authorization request without PKCE, nonce or state: %v", q)
	}
	p.QueueUser(user)
	cb := browserGet(t, authz.String())
	if cb.StatusCode != http.StatusFound || !strings.HasPrefix(cb.Header.Get("Location"), s.URL+"/v1/auth/oidc/"+provider.String()+"/callback?") {
		t.Fatalf("provider answered %d %q", cb.StatusCode, cb.Header.Get("Location"))
	}
	return cb.Header.Get("Location")
}

// ssoSignIn completes a flow and answers the access token from the
// console's fragment.
func ssoSignIn(t *testing.T, s *stacktest.Stack, p *idp, provider uuid.UUID, user mockoidc.User) string {
	t.Helper()
	resp := browserGet(t, ssoFlow(t, s, p, provider, user))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/#") {
		t.Fatalf("callback: %d %q", resp.StatusCode, loc)
	}
	frag, err := url.ParseQuery(strings.TrimPrefix(loc, "/#"))
	if err != nil || frag.Get("access_token") == "" || frag.Get("refresh_token") == "" {
		t.Fatalf("fragment %q", loc)
	}
	return frag.Get("access_token")
}

func callbackStatus(t *testing.T, callback string) int {
	t.Helper()
	return browserGet(t, callback).StatusCode
}

type me struct {
	ID       uuid.UUID `json:"id"`
	Email    string    `json:"email"`
	TenantID uuid.UUID `json:"tenant_id"`
	Roles    []string  `json:"roles"`
}

// TestOIDCSignIn covers issue 12's single sign-on end to end against a real
// provider: configuration by a platform administrator (secret sealed, never
// answered), the public provider list, first sign-in creating the user in
// the tenant its group maps to, a mapping change taking effect at the next
// sign-in, a rotated signing key, and refusals that create nothing: a wrong
// audience, an expired ID token, a replayed code, a foreign state, groups
// mapped nowhere.
func TestOIDCSignIn(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{DevLoopbackHTTP: true})
	d := openDB(t, s)
	p := startIDP(t)
	pa := s.Login(t, s.User(t, uuidPlatform(), auth.RolePlatformAdmin)).AccessToken
	tenant := s.Tenant(t, "sso")
	tenantAdmin := s.Login(t, s.User(t, tenant, auth.RoleTenantAdmin)).AccessToken

	cfg := map[string]any{"name": "Corp SSO", "issuer": p.Issuer(), "client_id": p.ClientID, "client_secret": p.ClientSecret,
		"scopes": []string{"openid", "email", "profile", "groups"}, "groups_claim": "groups", "create_users": true,
		"mappings": []map[string]any{{"group": "eng", "tenant_id": tenant, "roles": []string{"operator"}}}}
	var acc accepted

	t.Run("configuration", func(t *testing.T) {
		wantProblem(t, s.Do(t, tenantAdmin, http.MethodPost, "/v1/identity-providers", cfg, nil), http.StatusForbidden, "forbidden")
		before := d.events(t)
		for field, change := range map[string]map[string]any{
			"issuer":        {"issuer": "ftp://idp.example"},
			"client_secret": {"client_secret": nil},
			"mappings":      {"mappings": []map[string]any{{"group": "x", "tenant_id": tenant, "roles": []string{"platform_admin"}}}},
			"mappings ":     {"mappings": []map[string]any{{"group": "x", "tenant_id": uuid.New(), "roles": []string{"viewer"}}}},
		} {
			body := map[string]any{}
			for k, v := range cfg {
				body[k] = v
			}
			for k, v := range change {
				if v == nil {
					delete(body, k)
				} else {
					body[k] = v
				}
			}
			pr := wantProblem(t, s.Do(t, pa, http.MethodPost, "/v1/identity-providers", body, nil), http.StatusBadRequest, "validation_failed")
			if _, ok := fieldErrors(t, pr)[strings.TrimSpace(field)]; !ok {
				t.Errorf("%s not named: %v", field, pr)
			}
		}
		if after := d.events(t); after != before {
			t.Fatalf("refused configurations appended %d events", after-before)
		}
		wantStatus(t, s.Do(t, pa, http.MethodPost, "/v1/identity-providers", cfg, &acc), http.StatusAccepted)
		r := s.Do(t, pa, http.MethodGet, "/v1/identity-providers/"+acc.ID.String(), nil, nil)
		wantStatus(t, r, http.StatusOK)
		if strings.Contains(string(r.Body), p.ClientSecret) || strings.Contains(string(r.Body), "secret") {
			t.Fatalf("the provider is answered with its secret: %s", r.Body)
		}
		var pub struct {
			Items []struct {
				ID   uuid.UUID `json:"id"`
				Name string    `json:"name"`
			} `json:"items"`
		}
		wantStatus(t, s.Do(t, "", http.MethodGet, "/v1/auth/providers", nil, &pub), http.StatusOK)
		if len(pub.Items) != 1 || pub.Items[0].ID != acc.ID || pub.Items[0].Name != "Corp SSO" {
			t.Fatalf("public providers %+v", pub)
		}
	})
	provider := acc.ID
	alice := &mockoidc.MockUser{Subject: "alice-" + uuid.NewString()[:8], Email: newEmail(), EmailVerified: true,
		PreferredUsername: "alice", Groups: []string{"eng"}}
	var aliceID uuid.UUID

	t.Run("first sign-in creates the user in the mapped tenant", func(t *testing.T) {
		tok := ssoSignIn(t, s, p, provider, alice)
		var m me
		wantStatus(t, s.Do(t, tok, http.MethodGet, "/v1/users/me", nil, &m), http.StatusOK)
		if m.Email != alice.Email || m.TenantID != tenant || len(m.Roles) != 1 || m.Roles[0] != "operator" {
			t.Fatalf("signed in as %+v", m)
		}
		aliceID = m.ID
		if evs := revealedWhere(t, s, d, `event_type = 'oidc_signed_in' AND data->>'provider_id' = $1 AND data->>'provider' = 'Corp SSO'
			AND tenant_id = $2 AND data->>'subject' LIKE 'pii1:%'`, provider.String(), tenant); len(evs) != 1 ||
			!strings.Contains(string(evs[0].Data), `"subject":"`+alice.Subject+`"`) {
			t.Fatalf("oidc_signed_in events: %+v", evs)
		}
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'user_identity_linked' AND stream_id = $1`, "user-"+m.ID.String()); n != 1 {
			t.Fatalf("user_identity_linked events: %d", n)
		}
		// The user has no password: the password sign-in refuses it.
		wantProblem(t, s.Do(t, "", http.MethodPost, "/v1/auth/login", map[string]string{"email": alice.Email, "password": "!sso"}, nil),
			http.StatusUnauthorized, "unauthenticated")
	})

	t.Run("a mapping change takes effect at the next sign-in", func(t *testing.T) {
		wantStatus(t, s.Do(t, pa, http.MethodPatch, "/v1/identity-providers/"+provider.String(), map[string]any{
			"mappings": []map[string]any{{"group": "eng", "tenant_id": tenant, "roles": []string{"vm_admin"}}}}, nil), http.StatusAccepted)
		var m me
		wantStatus(t, s.Do(t, ssoSignIn(t, s, p, provider, alice), http.MethodGet, "/v1/users/me", nil, &m), http.StatusOK)
		if m.ID != aliceID || len(m.Roles) != 1 || m.Roles[0] != "vm_admin" {
			t.Fatalf("after the mapping change: %+v", m)
		}
		if n := p.jwksReads.Load(); n != 1 {
			t.Fatalf("the JWKS was read %d times for two sign-ins, want once (cached)", n)
		}
	})

	t.Run("a rotated signing key is fetched at once", func(t *testing.T) {
		kp, err := mockoidc.RandomKeypair(2048)
		if err != nil {
			t.Fatal(err)
		}
		p.change(func(m *mockoidc.MockOIDC) { m.Keypair = kp })
		var m me
		wantStatus(t, s.Do(t, ssoSignIn(t, s, p, provider, alice), http.MethodGet, "/v1/users/me", nil, &m), http.StatusOK)
		if m.ID != aliceID {
			t.Fatalf("signed in as %+v", m)
		}
		if n := p.jwksReads.Load(); n != 2 {
			t.Fatalf("the JWKS was read %d times, want twice (again for the unknown kid)", n)
		}
	})

	// Each refusal creates no user, link or session, and no event but the
	// recorded refusal.
	refused := func(t *testing.T, status int, callback string) {
		t.Helper()
		const identityEvents = `SELECT count(*) FROM events WHERE event_type IN ('user_created', 'session_started', 'oidc_signed_in', 'user_identity_linked')`
		recorded := d.count(t, identityEvents)
		users := d.count(t, `SELECT count(*) FROM user_credentials`)
		sessions := d.count(t, `SELECT count(*) FROM sessions`)
		links := d.count(t, `SELECT count(*) FROM user_identities`)
		if got := callbackStatus(t, callback); got != status {
			t.Fatalf("callback: %d, want %d", got, status)
		}
		if d.count(t, `SELECT count(*) FROM user_credentials`) != users || d.count(t, `SELECT count(*) FROM sessions`) != sessions ||
			d.count(t, `SELECT count(*) FROM user_identities`) != links {
			t.Fatal("a refused sign-in created something")
		}
		if n := d.count(t, identityEvents); n != recorded {
			t.Fatalf("a refused sign-in recorded %d identity events", n-recorded)
		}
	}

	t.Run("wrong audience", func(t *testing.T) {
		bob := &mockoidc.MockUser{Subject: "bob", Email: newEmail(), EmailVerified: true, Groups: []string{"eng"}}
		refused(t, http.StatusUnauthorized, ssoFlow(t, s, p, provider, audienceUser{bob}))
	})

	t.Run("expired ID token", func(t *testing.T) {
		carol := &mockoidc.MockUser{Subject: "carol", Email: newEmail(), EmailVerified: true, Groups: []string{"eng"}}
		callback := ""
		p.change(func(m *mockoidc.MockOIDC) { m.FastForward(-2 * time.Hour) })
		defer p.change(func(m *mockoidc.MockOIDC) { m.FastForward(2 * time.Hour) })
		callback = ssoFlow(t, s, p, provider, carol)
		refused(t, http.StatusUnauthorized, callback)
	})

	t.Run("an ID token signed with an algorithm not pinned", func(t *testing.T) {
		// HS256 keyed with the client secret (which OpenID Connect allows a
		// provider, and which anyone holding the secret could forge), and
		// no signature at all.
		for name, sign := range map[string]func(jwt.MapClaims) string{
			"HS256": func(c jwt.MapClaims) string {
				s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(p.ClientSecret))
				return s
			},
			"none": func(c jwt.MapClaims) string {
				s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
				return s
			},
		} {
			p.change(func(*mockoidc.MockOIDC) { p.resign = sign })
			callback := ssoFlow(t, s, p, provider, alice)
			t.Run(name, func(t *testing.T) { refused(t, http.StatusUnauthorized, callback) })
			p.change(func(*mockoidc.MockOIDC) { p.resign = nil })
		}
		// The same flow, signed as the provider signs, still passes.
		wantStatus(t, s.Do(t, ssoSignIn(t, s, p, provider, alice), http.MethodGet, "/v1/users/me", nil, nil), http.StatusOK)
	})

	t.Run("a replayed callback or code", func(t *testing.T) {
		callback := ssoFlow(t, s, p, provider, alice)
		wantStatus(t, stacktest.Response{Response: browserGet(t, callback)}, http.StatusFound)
		refused(t, http.StatusBadRequest, callback) // its state is spent
		// The spent code with a fresh state: the provider refuses it.
		fresh, _ := url.Parse(ssoFlow(t, s, p, provider, alice))
		old, _ := url.Parse(callback)
		q := fresh.Query()
		q.Set("code", old.Query().Get("code"))
		fresh.RawQuery = q.Encode()
		refused(t, http.StatusUnauthorized, fresh.String())
	})

	t.Run("a foreign state", func(t *testing.T) {
		callback := s.URL + "/v1/auth/oidc/" + provider.String() + "/callback?state=" + url.QueryEscape("forged-"+uuid.NewString()) + "&code=abc"
		before := d.events(t)
		if got := callbackStatus(t, callback); got != http.StatusBadRequest {
			t.Fatalf("foreign state: %d", got)
		}
		if after := d.events(t); after != before {
			t.Fatalf("a foreign state recorded %d events", after-before)
		}
		// A state of another provider's sign-in is foreign too.
		other, _ := url.Parse(ssoFlow(t, s, p, provider, alice))
		refused(t, http.StatusBadRequest, s.URL+"/v1/auth/oidc/"+uuid.NewString()+"/callback?"+other.RawQuery)
	})

	t.Run("groups mapped nowhere", func(t *testing.T) {
		dan := &mockoidc.MockUser{Subject: "dan", Email: newEmail(), EmailVerified: true, Groups: []string{"sales"}}
		refused(t, http.StatusForbidden, ssoFlow(t, s, p, provider, dan))
	})

	t.Run("no event holds the client secret", func(t *testing.T) {
		if n := d.count(t, `SELECT count(*) FROM events WHERE data::text LIKE '%' || $1 || '%'`, p.ClientSecret); n != 0 {
			t.Fatalf("%d events hold the client secret", n)
		}
		if n := d.count(t, `SELECT count(*) FROM identity_providers WHERE sealed_secret LIKE '%' || $1 || '%'`, p.ClientSecret); n != 0 {
			t.Fatal("the client secret is stored in clear")
		}
	})
}

func uuidPlatform() uuid.UUID { return uuid.Max }
