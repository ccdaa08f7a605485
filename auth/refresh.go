package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"

	"github.com/google/uuid"
)

const (
	refreshSecretLen = 32
	// RefreshTokenLength is the length of a refresh token string:
	// base64url(16-byte session id || 32 random bytes), unpadded.
	RefreshTokenLength = (16 + refreshSecretLen) * 4 / 3
)

var refreshEncoding = base64.RawURLEncoding.Strict()

// NewRefreshToken returns a new opaque refresh token for a session and the
// SHA-256 hash to store. The token is base64url(session id || 32 random
// bytes), so the session is found from the token itself; only the hash is
// persisted.
func NewRefreshToken(sessionID uuid.UUID) (token string, hash []byte) {
	buf := make([]byte, 16+refreshSecretLen)
	copy(buf, sessionID[:])
	// crypto/rand.Read never fails (it aborts the program on an unusable
	// randomness source).
	_, _ = rand.Read(buf[16:])
	token = refreshEncoding.EncodeToString(buf)
	return token, HashRefreshToken(token)
}

// ParseRefreshToken checks the shape of a refresh token and returns its
// session id and its hash, to be compared with the stored hash using
// RefreshTokenHashEqual. Any malformation wraps ErrInvalidToken.
func ParseRefreshToken(token string) (sessionID uuid.UUID, hash []byte, err error) {
	if len(token) != RefreshTokenLength {
		return uuid.Nil, nil, fmt.Errorf("%w: refresh token length", ErrInvalidToken)
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return uuid.Nil, nil, fmt.Errorf("%w: refresh token charset", ErrInvalidToken)
		}
	}
	buf, err := refreshEncoding.DecodeString(token)
	if err != nil || len(buf) != 16+refreshSecretLen {
		return uuid.Nil, nil, fmt.Errorf("%w: refresh token encoding", ErrInvalidToken)
	}
	copy(sessionID[:], buf[:16])
	if sessionID == uuid.Nil {
		return uuid.Nil, nil, fmt.Errorf("%w: refresh token session", ErrInvalidToken)
	}
	return sessionID, HashRefreshToken(token), nil
}

// HashRefreshToken returns the SHA-256 of the whole token string, the value
// stored for a session. (The token has 256 bits of randomness, so a fast
// hash is enough.)
func HashRefreshToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// RefreshTokenHashEqual compares two refresh token hashes in constant time.
func RefreshTokenHashEqual(a, b []byte) bool {
	return len(a) == sha256.Size && subtle.ConstantTimeCompare(a, b) == 1
}
