// Package authtest holds test helpers around package auth.
package authtest

import (
	"testing"

	"github.com/accountdb/accountdb/auth"
)

// KeySet is a key set of one freshly generated signing key, as a test's
// core signs its access tokens with.
func KeySet(t testing.TB) *auth.KeySet {
	t.Helper()
	key, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeySet(key)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
