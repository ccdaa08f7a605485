package auth

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Access token defaults.
const (
	DefaultIssuer         = "accountdb"
	DefaultAudience       = "accountdb-api"
	DefaultAccessTokenTTL = 15 * time.Minute
	DefaultLeeway         = 30 * time.Second
	// MaxTokenLength bounds the size of an access token accepted by Verify;
	// longer input is rejected before any decoding.
	MaxTokenLength = 8 << 10
)

// SigningAlgorithm is the only JWT "alg" AccountDB issues or accepts.
const SigningAlgorithm = "EdDSA"

// ErrInvalidToken is wrapped by every access and refresh token failure. The
// caller answers 401 without further detail; the wrapped text is for logs.
var ErrInvalidToken = errors.New("auth: invalid token")

// Claims are the access token claims. sub is the user id, tid the tenant
// id, sid the session id (all UUIDs), roles the role names. There is
// deliberately no email or other PII.
type Claims struct {
	jwt.RegisteredClaims
	TenantID  string   `json:"tid"`
	SessionID string   `json:"sid"`
	Roles     []string `json:"roles"`
}

// UserID returns sub as a UUID (uuid.Nil if it is not one, which cannot
// happen for claims returned by Verifier.Verify).
func (c *Claims) UserID() uuid.UUID { return parseOrNil(c.Subject) }

// Tenant returns tid as a UUID (uuid.Nil if it is not one).
func (c *Claims) Tenant() uuid.UUID { return parseOrNil(c.TenantID) }

// Session returns sid as a UUID (uuid.Nil if it is not one).
func (c *Claims) Session() uuid.UUID { return parseOrNil(c.SessionID) }

func parseOrNil(s string) uuid.UUID {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil
	}
	return id
}

// Issuer signs access tokens with the KeySet's current key. Zero fields
// other than Keys take the defaults.
type Issuer struct {
	Keys     *KeySet
	Issuer   string           // iss; DefaultIssuer
	Audience string           // aud; DefaultAudience
	TTL      time.Duration    // lifetime; DefaultAccessTokenTTL
	Now      func() time.Time // clock; time.Now
}

// Issue signs an access token for a user in a tenant and session. It returns
// the compact JWT and its lifetime (for the expires_in field).
func (is *Issuer) Issue(subject, tenantID, sessionID uuid.UUID, roles []string) (string, time.Duration, error) {
	if is.Keys == nil {
		return "", 0, errors.New("auth: issuer has no keys")
	}
	if subject == uuid.Nil || tenantID == uuid.Nil || sessionID == uuid.Nil {
		return "", 0, errors.New("auth: subject, tenant and session must be non-nil UUIDs")
	}
	ttl := is.TTL
	if ttl <= 0 {
		ttl = DefaultAccessTokenTTL
	}
	now := time.Now()
	if is.Now != nil {
		now = is.Now()
	}
	jti, err := uuid.NewV7()
	if err != nil {
		return "", 0, fmt.Errorf("auth: token id: %w", err)
	}
	r := make([]string, len(roles))
	copy(r, roles)
	claims := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    orDefault(is.Issuer, DefaultIssuer),
			Subject:   subject.String(),
			Audience:  jwt.ClaimStrings{orDefault(is.Audience, DefaultAudience)},
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti.String(),
		},
		TenantID:  tenantID.String(),
		SessionID: sessionID.String(),
		Roles:     r,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = is.Keys.CurrentKeyID()
	s, err := tok.SignedString(is.Keys.signing)
	if err != nil {
		return "", 0, fmt.Errorf("auth: sign token: %w", err)
	}
	return s, ttl, nil
}

// Verifier checks access tokens against a KeySet. Zero fields other than
// Keys take the defaults; Leeway < 0 means no leeway.
type Verifier struct {
	Keys     *KeySet
	Issuer   string           // required iss; DefaultIssuer
	Audience string           // required aud; DefaultAudience
	Leeway   time.Duration    // clock skew allowance; DefaultLeeway
	Now      func() time.Time // clock; time.Now
}

// Verify parses and validates an access token: length and shape, EdDSA
// only, key selected by kid, signature, iss, aud, exp (required), nbf, iat
// (required, not in the future), and UUID sub/tid/sid/jti. Every failure
// wraps ErrInvalidToken.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if v.Keys == nil {
		return nil, fmt.Errorf("%w: verifier has no keys", ErrInvalidToken)
	}
	if len(token) > MaxTokenLength {
		return nil, fmt.Errorf("%w: too long", ErrInvalidToken)
	}
	if strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: not three segments", ErrInvalidToken)
	}
	leeway := v.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	} else if leeway < 0 {
		leeway = 0
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{SigningAlgorithm}),
		jwt.WithIssuer(orDefault(v.Issuer, DefaultIssuer)),
		jwt.WithAudience(orDefault(v.Audience, DefaultAudience)),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithStrictDecoding(),
	}
	if v.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(v.Now))
	}
	claims := &Claims{}
	_, err := jwt.NewParser(opts...).ParseWithClaims(token, claims, v.keyFunc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if claims.IssuedAt == nil {
		return nil, fmt.Errorf("%w: missing iat", ErrInvalidToken)
	}
	for _, f := range []struct{ name, val string }{
		{"sub", claims.Subject}, {"tid", claims.TenantID}, {"sid", claims.SessionID}, {"jti", claims.ID},
	} {
		if id, err := uuid.Parse(f.val); err != nil || id == uuid.Nil || len(f.val) != 36 {
			return nil, fmt.Errorf("%w: %s is not a UUID", ErrInvalidToken, f.name)
		}
	}
	return claims, nil
}

func (v *Verifier) keyFunc(t *jwt.Token) (any, error) {
	if _, ok := t.Method.(*jwt.SigningMethodEd25519); !ok {
		return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
	}
	kid, ok := t.Header["kid"].(string)
	if !ok || kid == "" {
		return nil, errors.New("missing kid")
	}
	key, ok := v.Keys.PublicKey(kid)
	if !ok {
		return nil, errors.New("unknown kid")
	}
	return ed25519.PublicKey(key), nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
