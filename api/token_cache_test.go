package api

import (
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/authtest"
	"github.com/google/uuid"
)

// The verified-token cache answers what the verifier would: the claims of
// a good token, each time; an error for a bad one, each time; and, once
// the token has expired, the verifier's refusal, never the remembered
// claims. It stays within its bound.
func TestVerifiedTokensAnswerAsTheVerifier(t *testing.T) {
	keys := authtest.KeySet(t)
	clock := time.Now()
	now := func() time.Time { return clock }
	issuer := &auth.Issuer{Keys: keys, TTL: time.Minute, Now: now}
	c := newVerifiedTokens(&auth.Verifier{Keys: keys, Now: now, Leeway: -1})
	c.now = now
	user, tenant, session := uuid.New(), uuid.New(), uuid.New()
	token, _, err := issuer.Issue(user, tenant, session, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		claims, err := c.Verify(token)
		if err != nil || claims.UserID() != user || claims.Tenant() != tenant || claims.Session() != session {
			t.Fatalf("good token: %+v %v", claims, err)
		}
	}
	if len(c.m) != 1 {
		t.Fatalf("%d tokens remembered, want 1", len(c.m))
	}
	forged := token[:len(token)-4] + "AAAA"
	for range 2 {
		if _, err := c.Verify(forged); err == nil {
			t.Fatal("a token with another signature verified")
		}
	}
	clock = clock.Add(time.Minute)
	if _, err := c.Verify(token); err == nil {
		t.Fatal("an expired token was answered from the cache")
	}
	if len(c.m) != 0 {
		t.Fatalf("the expired token is still remembered")
	}

	c.max = 16
	for range 40 {
		tok, _, err := issuer.Issue(uuid.New(), tenant, uuid.New(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Verify(tok); err != nil {
			t.Fatal(err)
		}
		if len(c.m) > c.max {
			t.Fatalf("%d tokens remembered, bound %d", len(c.m), c.max)
		}
	}
}
