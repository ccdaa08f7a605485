package privacy

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// A personal value in the log is a string that names the key it was sealed
// with, so that readers find it and retention can rotate keys:
//
//	pii1:<subject uuid>:<key name>:<base64url(nonce ‖ AES-256-GCM ciphertext)>
//
// The key name is DataKey for personal data fields and MetadataKey(day) for
// request metadata. The additional data binds the ciphertext to its tenant,
// subject, key and field, so a value cannot be moved to another record and
// read as something else.
const cipherPrefix = "pii1:"

// DataKey is the name of a subject's key for personal data fields.
const DataKey = "data"

// metadataKeyPrefix starts the names of a subject's request-metadata keys,
// one per UTC day: "meta-20261204".
const metadataKeyPrefix = "meta-"

// KeyRef names one key of one subject.
type KeyRef struct {
	Subject uuid.UUID
	Name    string
}

// ErrNotCiphertext: the value is not in the format above (an event recorded
// before encryption existed holds plaintext).
var ErrNotCiphertext = errors.New("privacy: not a sealed personal value")

// IsCiphertext reports whether s looks like a sealed personal value.
func IsCiphertext(s string) bool { return strings.HasPrefix(s, cipherPrefix) }

// parseCiphertext splits a sealed value into its key and its sealed bytes.
func parseCiphertext(s string) (KeyRef, []byte, error) {
	rest, ok := strings.CutPrefix(s, cipherPrefix)
	if !ok {
		return KeyRef{}, nil, ErrNotCiphertext
	}
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) != 3 {
		return KeyRef{}, nil, ErrNotCiphertext
	}
	subject, err := uuid.Parse(parts[0])
	if err != nil || !validKeyName(parts[1]) {
		return KeyRef{}, nil, ErrNotCiphertext
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return KeyRef{}, nil, ErrNotCiphertext
	}
	return KeyRef{Subject: subject, Name: parts[1]}, raw, nil
}

func validKeyName(n string) bool {
	if n == "" || len(n) > 32 {
		return false
	}
	for _, c := range n {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// additionalData binds a sealed value to where it is.
func additionalData(tenant uuid.UUID, ref KeyRef, field string) []byte {
	return []byte("accountdb.pii.v1|" + tenant.String() + "|" + ref.Subject.String() + "|" + ref.Name + "|" + field)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts plaintext under key (ref's) for field of an event of tenant.
func seal(key []byte, tenant uuid.UUID, ref KeyRef, field, plaintext string) (string, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := aead.Seal(nonce, nonce, []byte(plaintext), additionalData(tenant, ref, field))
	return cipherPrefix + ref.Subject.String() + ":" + ref.Name + ":" + base64.RawURLEncoding.EncodeToString(out), nil
}

// open decrypts what seal produced.
func open(key []byte, tenant uuid.UUID, ref KeyRef, field string, sealed []byte) (string, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return "", err
	}
	n := aead.NonceSize()
	if len(sealed) < n {
		return "", fmt.Errorf("privacy: sealed value too short")
	}
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], additionalData(tenant, ref, field))
	if err != nil {
		return "", fmt.Errorf("privacy: cannot open the %s of subject %s with key %s: %w", field, ref.Subject, ref.Name, err)
	}
	return string(plain), nil
}
