package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"strings"
)

// API tokens are long-lived bearer secrets for automation. Their shape is
// made for secret scanners (GitHub's, gitleaks, trufflehog): a fixed prefix
// says whose token it is, and a checksum of the rest lets a scanner (and
// the API, before any database look-up) tell a real token from a string
// that merely looks like one:
//
//	adb_ <36 random base62 characters> <6 base62 characters: CRC-32 of the first 40>
//
// 36 base62 characters carry 214 bits of randomness, so the stored SHA-256
// of the whole token (never the token) is enough: no salt or slow hash is
// needed against guessing.
const (
	APITokenPrefix = "adb_"
	apiTokenRandom = 36
	apiTokenCheck  = 6
	// APITokenLength is the length of a whole token string.
	APITokenLength = len(APITokenPrefix) + apiTokenRandom + apiTokenCheck
	// APITokenDisplayPrefix is how many leading characters of a token are
	// shown in lists, so a user can tell their tokens apart (and match one
	// a scanner reported) without the secret.
	APITokenDisplayPrefix = len(APITokenPrefix) + 8
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewAPIToken returns a fresh token, the SHA-256 to store and the prefix to
// show.
func NewAPIToken() (token string, hash []byte, prefix string) {
	var b strings.Builder
	b.WriteString(APITokenPrefix)
	buf := make([]byte, 1)
	for b.Len() < len(APITokenPrefix)+apiTokenRandom {
		_, _ = rand.Read(buf) // never fails (crypto/rand aborts instead)
		// Rejection sampling keeps every character equally likely:
		// 248 = 4 × 62.
		if buf[0] < 248 {
			b.WriteByte(base62[buf[0]%62])
		}
	}
	body := b.String()
	token = body + checksum(body)
	return token, HashAPIToken(token), token[:APITokenDisplayPrefix]
}

// checksum is the CRC-32 (IEEE) of s in 6 base62 characters, zero-padded.
func checksum(s string) string {
	n := crc32.ChecksumIEEE([]byte(s))
	out := make([]byte, apiTokenCheck)
	for i := apiTokenCheck - 1; i >= 0; i-- {
		out[i] = base62[n%62]
		n /= 62
	}
	return string(out)
}

// LooksLikeAPIToken reports whether a bearer credential claims to be an API
// token (rather than an access token): by its prefix only.
func LooksLikeAPIToken(s string) bool { return strings.HasPrefix(s, APITokenPrefix) }

// ParseAPIToken checks a token's shape and checksum and returns the hash to
// look it up by. A malformed token wraps ErrInvalidToken.
func ParseAPIToken(token string) ([]byte, error) {
	if len(token) != APITokenLength || !strings.HasPrefix(token, APITokenPrefix) {
		return nil, fmt.Errorf("%w: api token shape", ErrInvalidToken)
	}
	for i := len(APITokenPrefix); i < len(token); i++ {
		if strings.IndexByte(base62, token[i]) < 0 {
			return nil, fmt.Errorf("%w: api token charset", ErrInvalidToken)
		}
	}
	body := token[:len(token)-apiTokenCheck]
	if checksum(body) != token[len(body):] {
		return nil, fmt.Errorf("%w: api token checksum", ErrInvalidToken)
	}
	return HashAPIToken(token), nil
}

// HashAPIToken is the SHA-256 of the whole token, what is stored.
func HashAPIToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}
