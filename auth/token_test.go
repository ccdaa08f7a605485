package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

var (
	testUser    = uuid.MustParse("0190a0b0-0000-7000-8000-000000000001")
	testTenant  = uuid.MustParse("0190a0b0-0000-7000-8000-000000000002")
	testSession = uuid.MustParse("0190a0b0-0000-7000-8000-000000000003")
	testNow     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func clock(t time.Time) func() time.Time { return func() time.Time { return t } }

func mustKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustKeySet(t *testing.T, cur ed25519.PrivateKey, prev ...ed25519.PublicKey) *KeySet {
	t.Helper()
	ks, err := NewKeySet(cur, prev...)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// validClaims returns claims as Issue would produce them at testNow.
func validClaims() *Claims {
	return &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    DefaultIssuer,
			Subject:   testUser.String(),
			Audience:  jwt.ClaimStrings{DefaultAudience},
			ExpiresAt: jwt.NewNumericDate(testNow.Add(15 * time.Minute)),
			NotBefore: jwt.NewNumericDate(testNow),
			IssuedAt:  jwt.NewNumericDate(testNow),
			ID:        uuid.Must(uuid.NewV7()).String(),
		},
		TenantID:  testTenant.String(),
		SessionID: testSession.String(),
		Roles:     []string{RoleOperator},
	}
}

func sign(t *testing.T, method jwt.SigningMethod, claims jwt.Claims, kid any, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != nil {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64json(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	key := mustKey(t)
	ks := mustKeySet(t, key)
	is := &Issuer{Keys: ks, Now: clock(testNow)}
	tok, exp, err := is.Issue(testUser, testTenant, testSession, []string{RoleOperator, RoleAuditor})
	if err != nil {
		t.Fatal(err)
	}
	if exp != 15*time.Minute {
		t.Fatalf("expiresIn = %v", exp)
	}
	// Header: alg EdDSA, kid = thumbprint of the key.
	p, _, err := jwt.NewParser().ParseUnverified(tok, &Claims{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Header["alg"] != "EdDSA" || p.Header["kid"] != KeyID(key.Public().(ed25519.PublicKey)) {
		t.Fatalf("header = %v", p.Header)
	}
	// Payload carries no email or other unexpected fields.
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	var names []string
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	if want := []string{"aud", "exp", "iat", "iss", "jti", "nbf", "roles", "sid", "sub", "tid"}; !slices.Equal(names, want) {
		t.Fatalf("claims = %v, want %v", names, want)
	}

	v := &Verifier{Keys: ks, Now: clock(testNow.Add(time.Minute))}
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.UserID() != testUser || c.Tenant() != testTenant || c.Session() != testSession {
		t.Fatalf("ids = %v %v %v", c.UserID(), c.Tenant(), c.Session())
	}
	if !slices.Equal(c.Roles, []string{RoleOperator, RoleAuditor}) {
		t.Fatalf("roles = %v", c.Roles)
	}
	if c.Issuer != "accountdb" || !slices.Equal(c.Audience, jwt.ClaimStrings{"accountdb-api"}) {
		t.Fatalf("iss/aud = %v %v", c.Issuer, c.Audience)
	}
	if !c.IssuedAt.Equal(testNow) || !c.NotBefore.Equal(testNow) || !c.ExpiresAt.Equal(testNow.Add(15*time.Minute)) {
		t.Fatalf("times = %v %v %v", c.IssuedAt, c.NotBefore, c.ExpiresAt)
	}
	jti, err := uuid.Parse(c.ID)
	if err != nil || jti.Version() != 7 {
		t.Fatalf("jti = %q", c.ID)
	}

	// Custom iss/aud/TTL, nil roles encode as an empty list.
	is2 := &Issuer{Keys: ks, Issuer: "adb-test", Audience: "adb-aud", TTL: 5 * time.Minute, Now: clock(testNow)}
	tok2, exp2, err := is2.Issue(testUser, testTenant, testSession, nil)
	if err != nil || exp2 != 5*time.Minute {
		t.Fatal(exp2, err)
	}
	c2, err := (&Verifier{Keys: ks, Issuer: "adb-test", Audience: "adb-aud", Now: clock(testNow)}).Verify(tok2)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Roles == nil || len(c2.Roles) != 0 {
		t.Fatalf("roles = %#v", c2.Roles)
	}
}

func TestIssueRejectsNilIDs(t *testing.T) {
	is := &Issuer{Keys: mustKeySet(t, mustKey(t))}
	for _, ids := range [][3]uuid.UUID{
		{uuid.Nil, testTenant, testSession},
		{testUser, uuid.Nil, testSession},
		{testUser, testTenant, uuid.Nil},
	} {
		if _, _, err := is.Issue(ids[0], ids[1], ids[2], nil); err == nil {
			t.Errorf("Issue(%v) succeeded", ids)
		}
	}
	if _, _, err := (&Issuer{}).Issue(testUser, testTenant, testSession, nil); err == nil {
		t.Error("Issue without keys succeeded")
	}
}

func TestVerifierRejects(t *testing.T) {
	key := mustKey(t)
	pub := key.Public().(ed25519.PublicKey)
	kid := KeyID(pub)
	ks := mustKeySet(t, key)
	other := mustKey(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &Issuer{Keys: ks, Now: clock(testNow)}
	good, _, err := is.Issue(testUser, testTenant, testSession, []string{RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	goodParts := strings.Split(good, ".")

	with := func(f func(c *Claims)) *Claims {
		c := validClaims()
		f(c)
		return c
	}
	issueWith := func(i *Issuer) string {
		s, _, err := i.Issue(testUser, testTenant, testSession, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// alg=none, built by hand and by the library.
	noneHeader := b64json(t, map[string]any{"alg": "none", "typ": "JWT", "kid": kid})
	payload := b64json(t, validClaims())
	noneLib := sign(t, jwt.SigningMethodNone, validClaims(), kid, jwt.UnsafeAllowNoneSignatureType)
	// Tampered payload: promote to platform_admin, keep the old signature.
	tampered := goodParts[0] + "." + b64json(t, with(func(c *Claims) {
		c.Roles = []string{RolePlatformAdmin}
		c.ExpiresAt = jwt.NewNumericDate(testNow.Add(24 * time.Hour))
	})) + "." + goodParts[2]
	// Same payload, signature from another key under our kid.
	wrongKey := sign(t, jwt.SigningMethodEdDSA, validClaims(), kid, other)
	// Same key but header re-encoded (kid swapped) with the old signature.
	swappedHeader := b64json(t, map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": KeyID(other.Public().(ed25519.PublicKey))}) + "." + goodParts[1] + "." + goodParts[2]

	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"alg none", noneHeader + "." + payload + "."},
		{"alg none (library)", noneLib},
		{"alg None capitalised", b64json(t, map[string]any{"alg": "None", "kid": kid}) + "." + payload + "."},
		{"HS256 with public key as secret", sign(t, jwt.SigningMethodHS256, validClaims(), kid, []byte(pub))},
		{"HS256 with PEM public key as secret", sign(t, jwt.SigningMethodHS256, validClaims(), kid, func() []byte { b, _ := MarshalPublicKeyPEM(pub); return b }())},
		{"RS256", sign(t, jwt.SigningMethodRS256, validClaims(), kid, rsaKey)},
		{"tampered payload, old signature", tampered},
		{"signature by another key under our kid", wrongKey},
		{"header swapped", swappedHeader},
		{"signature stripped", goodParts[0] + "." + goodParts[1] + "."},
		{"expired", issueWith(&Issuer{Keys: ks, Now: clock(testNow.Add(-time.Hour))})},
		{"expired beyond leeway", sign(t, jwt.SigningMethodEdDSA, with(func(c *Claims) {
			c.IssuedAt = jwt.NewNumericDate(testNow.Add(-20 * time.Minute))
			c.NotBefore = c.IssuedAt
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-31 * time.Second))
		}), kid, key)},
		{"not yet valid", sign(t, jwt.SigningMethodEdDSA, with(func(c *Claims) { c.NotBefore = jwt.NewNumericDate(testNow.Add(time.Hour)) }), kid, key)},
		{"issued in the future", sign(t, jwt.SigningMethodEdDSA, with(func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(testNow.Add(time.Hour)) }), kid, key)},
		{"missing iat", sign(t, jwt.SigningMethodEdDSA, with(func(c *Claims) { c.IssuedAt = nil }), kid, key)},
		{"wrong aud", issueWith(&Issuer{Keys: ks, Audience: "someone-else", Now: clock(testNow)})},
		{"missing aud", sign(t, jwt.SigningMethodEdDSA, with(func(c *Claims) { c.Audience = nil }), kid, key)},
		{"wrong iss", issueWith(&Issuer{Keys: ks, Issuer: "evil", Now: clock(testNow)})},
		{"missing iss", sign(t, jwt.SigningMethodEdDSA, with(func(c *Claims) { c.Issuer = "" }), kid, key)},
		{"missing exp", sign(t, jwt.SigningMethodEdDSA, with(func(c *Claims) { c.ExpiresAt = nil }), kid, key)},
		{"unknown kid", sign(t, jwt.SigningMethodEdDSA, validClaims(), KeyID(other.Public().(ed25519.PublicKey)), other)},
		{"missing kid", sign(t, jwt.SigningMethodEdDSA, validClaims(), nil, key)},
		{"empty kid", sign(t, jwt.SigningMethodEdDSA, validClaims(), "", key)},
		{"numeric kid", sign(t, jwt.SigningMethodEdDSA, validClaims(), 1, key)},
		{"two segments", goodParts[0] + "." + goodParts[1]},
		{"four segments", good + "." + goodParts[2]},
		{"one segment", goodParts[1]},
		{"1 MB of dots", strings.Repeat(".", 1<<20)},
		{"just over max length", good + strings.Repeat("A", MaxTokenLength)},
		{"garbage base64", "!!!!.@@@@.####"},
		{"base64 of garbage", "AAAA.AAAA.AAAA"},
		{"padded base64", goodParts[0] + "=." + goodParts[1] + "." + goodParts[2]},
		{"whitespace", " " + good},
		{"non-UUID sub", sign(t, jwt.SigningMethodEdDSA, with(func(c *Claims) { c.Subject = "alice@example.com" }), kid, key)},
		{"missing sub", sign(t, jwt.SigningMethodEdDSA, with(func(c *Claims) { c.Subject = "" }), kid, key)},
		{"nil UUID sub", sign(t, jwt.SigningMethodEdDSA, with(func(c *Claims) { c.Subject = uuid.Nil.String() }), kid, key)},
		{"braced UUID sub", sign(t, jwt.SigningMethodEdDSA, with(func(c *Claims) { c.Subject = "{" + testUser.String() + "}" }), kid, key)},
		{"non-UUID tid", sign(t, jwt.SigningMethodEdDSA, with(func(c *Claims) { c.TenantID = "acme" }), kid, key)},
		{"missing sid", sign(t, jwt.SigningMethodEdDSA, with(func(c *Claims) { c.SessionID = "" }), kid, key)},
		{"non-UUID jti", sign(t, jwt.SigningMethodEdDSA, with(func(c *Claims) { c.ID = "1" }), kid, key)},
		{"roles not a list", sign(t, jwt.SigningMethodEdDSA, jwt.MapClaims{
			"iss": DefaultIssuer, "aud": DefaultAudience, "sub": testUser.String(), "tid": testTenant.String(),
			"sid": testSession.String(), "jti": uuid.Must(uuid.NewV7()).String(), "roles": "platform_admin",
			"iat": testNow.Unix(), "exp": testNow.Add(time.Minute).Unix(),
		}, kid, key)},
	}
	v := &Verifier{Keys: ks, Now: clock(testNow)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(tt.token)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %v, %v; want ErrInvalidToken", c, err)
			}
			if c != nil {
				t.Fatalf("claims returned with error: %+v", c)
			}
			t.Log(err)
		})
	}
	// The good token itself verifies, so the rejections above are meaningful.
	if _, err := v.Verify(good); err != nil {
		t.Fatalf("good token: %v", err)
	}
	if _, err := (&Verifier{}).Verify(good); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("verifier without keys: %v", err)
	}
}

func TestVerifierLeeway(t *testing.T) {
	ks := mustKeySet(t, mustKey(t))
	tok, _, err := (&Issuer{Keys: ks, Now: clock(testNow)}).Issue(testUser, testTenant, testSession, nil)
	if err != nil {
		t.Fatal(err)
	}
	exp := testNow.Add(DefaultAccessTokenTTL)
	tests := []struct {
		name   string
		now    time.Time
		leeway time.Duration
		ok     bool
	}{
		{"just before exp", exp.Add(-time.Second), 0, true},
		{"within default leeway after exp", exp.Add(20 * time.Second), 0, true},
		{"beyond default leeway", exp.Add(31 * time.Second), 0, false},
		{"no leeway", exp.Add(time.Second), -1, false},
		{"clock slightly behind issuer", testNow.Add(-10 * time.Second), 0, true},
		{"clock far behind issuer", testNow.Add(-time.Minute), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&Verifier{Keys: ks, Leeway: tt.leeway, Now: clock(tt.now)}).Verify(tok)
			if (err == nil) != tt.ok {
				t.Fatalf("Verify err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey, newKey := mustKey(t), mustKey(t)
	oldPub := oldKey.Public().(ed25519.PublicKey)
	oldSet := mustKeySet(t, oldKey)
	oldTok, _, err := (&Issuer{Keys: oldSet, Now: clock(testNow)}).Issue(testUser, testTenant, testSession, nil)
	if err != nil {
		t.Fatal(err)
	}

	// During rotation: sign with the new key, still verify the old one.
	rotating := mustKeySet(t, newKey, oldPub, oldPub) // duplicates are harmless
	if rotating.CurrentKeyID() != KeyID(newKey.Public().(ed25519.PublicKey)) {
		t.Fatal("current kid is not the new key's")
	}
	if ids := rotating.KeyIDs(); len(ids) != 2 || !slices.Contains(ids, KeyID(oldPub)) {
		t.Fatalf("KeyIDs = %v", ids)
	}
	v := &Verifier{Keys: rotating, Now: clock(testNow)}
	if _, err := v.Verify(oldTok); err != nil {
		t.Fatalf("old token during rotation: %v", err)
	}
	newTok, _, err := (&Issuer{Keys: rotating, Now: clock(testNow)}).Issue(testUser, testTenant, testSession, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(newTok); err != nil {
		t.Fatalf("new token: %v", err)
	}
	// Old verifiers do not know the new key.
	if _, err := (&Verifier{Keys: oldSet, Now: clock(testNow)}).Verify(newTok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("new token on old set: %v", err)
	}

	// After rotation: the old key is dropped.
	after := &Verifier{Keys: mustKeySet(t, newKey), Now: clock(testNow)}
	if _, err := after.Verify(oldTok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("old token after rotation: %v", err)
	}
	if _, err := after.Verify(newTok); err != nil {
		t.Fatalf("new token after rotation: %v", err)
	}
}

func TestNewKeySetRejectsBadKeys(t *testing.T) {
	if _, err := NewKeySet(nil); err == nil {
		t.Error("nil signing key accepted")
	}
	if _, err := NewKeySet(mustKey(t), ed25519.PublicKey{1, 2, 3}); err == nil {
		t.Error("short previous key accepted")
	}
}

func TestKeyIDRFC8037Vector(t *testing.T) {
	// RFC 8037 appendix A.3: thumbprint of the A.2 public key.
	x, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := KeyID(ed25519.PublicKey(x)), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Fatalf("KeyID = %s, want %s", got, want)
	}
}

func BenchmarkVerifyDots(b *testing.B) {
	k, _ := GenerateKey()
	ks, _ := NewKeySet(k)
	v := &Verifier{Keys: ks}
	tok := strings.Repeat(".", 1<<20)
	for b.Loop() {
		_, _ = v.Verify(tok)
	}
}
