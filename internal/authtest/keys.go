// Package authtest holds test helpers around package auth.
package authtest

import (
	"crypto/ed25519"
	"testing"

	"github.com/accountdb/accountdb/auth"
)

// KeySet is a key set of one freshly generated signing key, as a test's
// core signs its access tokens with.
func KeySet(t testing.TB) *auth.KeySet {
	t.Helper()
	_, keys := SigningKey(t)
	return keys
}

// SigningKey is a freshly generated signing key and the key set of it alone,
// for tests that also sign (or forge) tokens themselves.
func SigningKey(t testing.TB) (ed25519.PrivateKey, *auth.KeySet) {
	t.Helper()
	key, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeySet(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, keys
}
