package auth

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestRefreshTokenRoundTrip(t *testing.T) {
	sid := uuid.Must(uuid.NewV7())
	tok, hash := NewRefreshToken(sid)
	if len(tok) != RefreshTokenLength || RefreshTokenLength != 64 {
		t.Fatalf("len = %d (const %d)", len(tok), RefreshTokenLength)
	}
	if sum := sha256.Sum256([]byte(tok)); !bytes.Equal(hash, sum[:]) {
		t.Fatal("hash is not SHA-256 of the token")
	}
	got, h2, err := ParseRefreshToken(tok)
	if err != nil || got != sid {
		t.Fatalf("ParseRefreshToken = %v, %v", got, err)
	}
	if !RefreshTokenHashEqual(hash, h2) {
		t.Fatal("hashes differ")
	}
	tok2, hash2 := NewRefreshToken(sid)
	if tok2 == tok || RefreshTokenHashEqual(hash, hash2) {
		t.Fatal("two tokens for one session are equal")
	}
	if !strings.HasPrefix(tok2, tok[:20]) { // session id occupies the first 16 bytes
		t.Fatal("session prefix differs")
	}
	if RefreshTokenHashEqual(nil, nil) || RefreshTokenHashEqual(hash[:8], hash[:8]) {
		t.Fatal("short hashes compare equal")
	}
}

func TestParseRefreshTokenRejects(t *testing.T) {
	sid := uuid.Must(uuid.NewV7())
	tok, hash := NewRefreshToken(sid)
	nilTok, _ := NewRefreshToken(uuid.Nil)
	flipped := []byte(tok)
	if flipped[40] == 'A' {
		flipped[40] = 'B'
	} else {
		flipped[40] = 'A'
	}
	// A tampered secret still parses (to the same session) but its hash no
	// longer matches the stored one.
	gotSID, tamperedHash, err := ParseRefreshToken(string(flipped))
	if err != nil || gotSID != sid || RefreshTokenHashEqual(hash, tamperedHash) {
		t.Fatalf("tampered secret: %v %v equal=%v", gotSID, err, RefreshTokenHashEqual(hash, tamperedHash))
	}
	tests := []struct{ name, token string }{
		{"empty", ""},
		{"short", tok[:63]},
		{"long", tok + "A"},
		{"padded", tok[:62] + "=="},
		{"std base64 plus", tok[:63] + "+"},
		{"std base64 slash", "/" + tok[1:]},
		{"dot", tok[:63] + "."},
		{"space", " " + tok[1:]},
		{"non-ascii", "é" + tok[2:]},
		{"nil session", nilTok},
		{"jwt-looking", strings.Repeat("a", 30) + "." + strings.Repeat("b", 33)},
		{"huge", strings.Repeat("A", 1<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, h, err := ParseRefreshToken(tt.token)
			if !errors.Is(err, ErrInvalidToken) || id != uuid.Nil || h != nil {
				t.Fatalf("ParseRefreshToken = %v, %x, %v", id, h, err)
			}
		})
	}
}
