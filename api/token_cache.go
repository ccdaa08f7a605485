package api

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/accountdb/accountdb/auth"
)

// verifiedTokens remembers the access tokens this process has verified,
// so a client sending the same token with every request pays for its
// signature check (Ed25519, tens of microseconds of CPU) once, not per
// request. It is keyed by the SHA-256 of the exact token: the same bytes
// verify the same way again until the token expires, and expiry is
// checked on every use against the clock (without the verifier's leeway,
// so a cached token never outlives what Verify would accept). Revocation
// is not the token's business: every request still reads its session
// (commands.Access) after this. A full cache forgets entries at random
// (Go's map order): a token forgotten is verified again, nothing more.
type verifiedTokens struct {
	verifier *auth.Verifier
	now      func() time.Time
	max      int

	mu sync.Mutex
	m  map[[sha256.Size]byte]*auth.Claims
}

// maxVerifiedTokens bounds the cache: about 1 kB each with the claims,
// so a few megabytes, and far more tokens than one process sees live.
const maxVerifiedTokens = 4096

func newVerifiedTokens(v *auth.Verifier) *verifiedTokens {
	return &verifiedTokens{verifier: v, now: time.Now, max: maxVerifiedTokens, m: map[[sha256.Size]byte]*auth.Claims{}}
}

// Verify is auth.Verifier.Verify, remembered.
func (c *verifiedTokens) Verify(token string) (*auth.Claims, error) {
	key := sha256.Sum256([]byte(token))
	now := c.now()
	c.mu.Lock()
	claims, ok := c.m[key]
	if ok && !now.Before(claims.ExpiresAt.Time) {
		delete(c.m, key)
		ok = false
	}
	c.mu.Unlock()
	if ok {
		return claims, nil
	}
	claims, err := c.verifier.Verify(token)
	if err != nil {
		return nil, err
	}
	// Remember only a token that is valid now without any leeway.
	if claims.ExpiresAt == nil || !now.Before(claims.ExpiresAt.Time) || claims.NotBefore != nil && now.Before(claims.NotBefore.Time) {
		return claims, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		n := 0
		for k := range c.m {
			delete(c.m, k)
			if n++; n >= c.max/8 {
				break
			}
		}
	}
	c.m[key] = claims
	return claims, nil
}
