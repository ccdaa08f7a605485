package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Default argon2id parameters: OWASP's minimum recommendation (m=19 MiB, t=2,
// p=1) with a 16-byte salt and a 32-byte key.
const (
	DefaultArgonMemory  uint32 = 19 * 1024 // KiB
	DefaultArgonTime    uint32 = 2
	DefaultArgonThreads uint8  = 1
	DefaultSaltLen      uint32 = 16
	DefaultKeyLen       uint32 = 32
)

// Bounds accepted for argon2id parameters, both when hashing and when
// parsing a stored hash.
const (
	maxArgonMemory uint32 = 1 << 20 // 1 GiB in KiB
	maxArgonTime   uint32 = 64
	minSaltLen     uint32 = 8
	maxSaltLen     uint32 = 64
	minKeyLen      uint32 = 16
	maxKeyLen      uint32 = 128
)

// ErrMalformedHash is returned (wrapped) when a stored password hash cannot be
// parsed or has out-of-range parameters.
var ErrMalformedHash = errors.New("auth: malformed password hash")

// PasswordHasher hashes and verifies passwords with argon2id. Zero fields take
// the defaults above, so the zero value is ready to use.
type PasswordHasher struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8  // lanes
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultPasswordHasher returns a hasher with the default parameters.
func DefaultPasswordHasher() PasswordHasher {
	return PasswordHasher{}.withDefaults()
}

func (h PasswordHasher) withDefaults() PasswordHasher {
	if h.Memory == 0 {
		h.Memory = DefaultArgonMemory
	}
	if h.Time == 0 {
		h.Time = DefaultArgonTime
	}
	if h.Threads == 0 {
		h.Threads = DefaultArgonThreads
	}
	if h.SaltLen == 0 {
		h.SaltLen = DefaultSaltLen
	}
	if h.KeyLen == 0 {
		h.KeyLen = DefaultKeyLen
	}
	return h
}

type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
}

func (p argonParams) check() error {
	switch {
	case p.threads == 0:
		return errors.New("parallelism must be at least 1")
	case p.memory < 8*uint32(p.threads):
		return errors.New("memory must be at least 8 KiB per lane")
	case p.memory > maxArgonMemory:
		return fmt.Errorf("memory above %d KiB", maxArgonMemory)
	case p.time == 0 || p.time > maxArgonTime:
		return fmt.Errorf("time must be between 1 and %d", maxArgonTime)
	}
	return nil
}

func (p argonParams) String() string {
	return fmt.Sprintf("m=%d,t=%d,p=%d", p.memory, p.time, p.threads)
}

var b64 = base64.RawStdEncoding.Strict()

// Hash hashes password with a fresh random salt and returns the PHC string
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash> (unpadded
// standard base64). It does not apply the password policy; call
// ValidatePassword first when the password is being set.
func (h PasswordHasher) Hash(password string) (string, error) {
	h = h.withDefaults()
	p := argonParams{memory: h.Memory, time: h.Time, threads: h.Threads}
	if err := p.check(); err != nil {
		return "", fmt.Errorf("auth: argon2id parameters: %w", err)
	}
	if h.SaltLen < minSaltLen || h.SaltLen > maxSaltLen {
		return "", fmt.Errorf("auth: argon2id salt length must be between %d and %d", minSaltLen, maxSaltLen)
	}
	if h.KeyLen < minKeyLen || h.KeyLen > maxKeyLen {
		return "", fmt.Errorf("auth: argon2id key length must be between %d and %d", minKeyLen, maxKeyLen)
	}
	salt := make([]byte, h.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, h.KeyLen)
	return encodePHC(p, salt, key), nil
}

func encodePHC(p argonParams, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$%s$%s$%s", argon2.Version, p, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decodePHC parses an argon2id PHC string strictly: canonical parameter
// order and formatting, version 19, bounded parameters and lengths.
func decodePHC(encoded string) (argonParams, []byte, []byte, error) {
	var p argonParams
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return p, nil, nil, fmt.Errorf("%w: wrong number of fields", ErrMalformedHash)
	}
	if parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: algorithm is not argon2id", ErrMalformedHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: unsupported version", ErrMalformedHash)
	}
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return p, nil, nil, fmt.Errorf("%w: parameters", ErrMalformedHash)
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		s, ok := strings.CutPrefix(fields[i], name)
		if !ok {
			return p, nil, nil, fmt.Errorf("%w: parameters", ErrMalformedHash)
		}
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return p, nil, nil, fmt.Errorf("%w: parameters", ErrMalformedHash)
		}
		vals[i] = v
	}
	if vals[2] > 255 {
		return p, nil, nil, fmt.Errorf("%w: parallelism out of range", ErrMalformedHash)
	}
	p = argonParams{memory: uint32(vals[0]), time: uint32(vals[1]), threads: uint8(vals[2])}
	if p.String() != parts[3] { // rejects leading zeros and other non-canonical forms
		return p, nil, nil, fmt.Errorf("%w: parameters not canonical", ErrMalformedHash)
	}
	if err := p.check(); err != nil {
		return p, nil, nil, fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || uint32(len(salt)) < minSaltLen || uint32(len(salt)) > maxSaltLen {
		return p, nil, nil, fmt.Errorf("%w: salt", ErrMalformedHash)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || uint32(len(key)) < minKeyLen || uint32(len(key)) > maxKeyLen {
		return p, nil, nil, fmt.Errorf("%w: hash", ErrMalformedHash)
	}
	return p, salt, key, nil
}

// Verify reports whether password matches the PHC string encoded. The
// argon2id parameters are taken from encoded, not from h. A mismatch is
// (false, nil); an unparsable hash is (false, error wrapping
// ErrMalformedHash). The comparison is constant-time.
func (h PasswordHasher) Verify(password, encoded string) (bool, error) {
	p, salt, key, err := decodePHC(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// NeedsRehash reports whether encoded was produced with parameters other
// than h's (or cannot be parsed), so that the caller re-hashes the password
// after a successful login.
func (h PasswordHasher) NeedsRehash(encoded string) bool {
	h = h.withDefaults()
	p, salt, key, err := decodePHC(encoded)
	if err != nil {
		return true
	}
	return p.memory != h.Memory || p.time != h.Time || p.threads != h.Threads ||
		uint32(len(salt)) != h.SaltLen || uint32(len(key)) != h.KeyLen
}

// VerifyDummy performs a full verification of password against a fixed
// dummy hash with h's parameters and discards the result. Call it when the
// account does not exist (or has no password) so that the response takes as
// long as a wrong password would.
func (h PasswordHasher) VerifyDummy(password string) {
	h = h.withDefaults()
	p := argonParams{memory: h.Memory, time: h.Time, threads: h.Threads}
	if p.check() != nil || h.SaltLen < minSaltLen || h.SaltLen > maxSaltLen || h.KeyLen < minKeyLen || h.KeyLen > maxKeyLen {
		p = argonParams{memory: DefaultArgonMemory, time: DefaultArgonTime, threads: DefaultArgonThreads}
		h.SaltLen, h.KeyLen = DefaultSaltLen, DefaultKeyLen
	}
	dummy := encodePHC(p, make([]byte, h.SaltLen), make([]byte, h.KeyLen))
	_, _ = h.Verify(password, dummy)
}

// Password policy limits.
const (
	MinPasswordChars = 12
	MaxPasswordChars = 256
	MaxPasswordBytes = 1024
)

// Password policy errors. Messages never include the password.
var (
	ErrPasswordTooShort   = fmt.Errorf("password must be at least %d characters", MinPasswordChars)
	ErrPasswordTooLong    = fmt.Errorf("password must be at most %d characters (%d bytes)", MaxPasswordChars, MaxPasswordBytes)
	ErrPasswordInvalidUTF = errors.New("password must be valid UTF-8 text")
	ErrPasswordBlank      = errors.New("password must not consist only of whitespace")
)

// ValidatePassword applies the password policy for new passwords: 12 to 256
// characters (at most 1024 bytes), valid UTF-8, not only whitespace. It is
// not applied at login, so tightening the policy does not lock anyone out.
func ValidatePassword(p string) error {
	if len(p) > MaxPasswordBytes {
		return ErrPasswordTooLong
	}
	if !utf8.ValidString(p) {
		return ErrPasswordInvalidUTF
	}
	n := utf8.RuneCountInString(p)
	if n < MinPasswordChars {
		return ErrPasswordTooShort
	}
	if n > MaxPasswordChars {
		return ErrPasswordTooLong
	}
	if strings.TrimFunc(p, unicode.IsSpace) == "" {
		return ErrPasswordBlank
	}
	return nil
}
