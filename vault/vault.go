// Package vault seals secrets that must be stored (a Proxmox API token
// secret) with AES-256-GCM, so that they are never at rest, in an event or on
// the bus in clear. The core and the agent share the key; nothing else needs it.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeyFileName is the dev key's file in the data directory.
const KeyFileName = "secrets.key"

// ErrSealed is any failure to open a sealed value (wrong key, tampering).
var ErrSealed = errors.New("vault: cannot open sealed value")

const prefix = "v1:"

// Vault seals and opens values with one key.
type Vault struct{ aead cipher.AEAD }

// New returns a vault for a 32-byte key.
func New(key []byte) (*Vault, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("vault: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Vault{aead: aead}, nil
}

// ParseKey reads a base64 (standard or URL) 32-byte key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == 32 {
			return k, nil
		}
	}
	return nil, errors.New("vault: the key must be 32 bytes, base64-encoded")
}

// LoadOrGenerateKey reads the dev key from dir, creating it the first time.
func LoadOrGenerateKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, KeyFileName)
	if data, err := os.ReadFile(path); err == nil {
		return ParseKey(string(data))
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadOrGenerateKey(dir) // another process won the race
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		return nil, err
	}
	return key, nil
}

// Seal encrypts plaintext; additional binds it to a context (a cluster id),
// so a sealed value cannot be moved to another record.
func (v *Vault) Seal(plaintext, additional string) (string, error) {
	nonce := make([]byte, v.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := v.aead.Seal(nonce, nonce, []byte(plaintext), []byte(additional))
	return prefix + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts what Seal produced with the same additional data.
func (v *Vault) Open(sealed, additional string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sealed, prefix))
	if err != nil || !strings.HasPrefix(sealed, prefix) || len(raw) < v.aead.NonceSize() {
		return "", ErrSealed
	}
	n := v.aead.NonceSize()
	plain, err := v.aead.Open(nil, raw[:n], raw[n:], []byte(additional))
	if err != nil {
		return "", ErrSealed
	}
	return string(plain), nil
}
