package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// KeyFileName is the name of the development signing key inside the data
// directory.
const KeyFileName = "jwt-ed25519.pem"

// GenerateKey returns a new random Ed25519 signing key.
func GenerateKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: generate ed25519 key: %w", err)
	}
	return priv, nil
}

// ParsePrivateKeyPEM parses a PKCS#8 "PRIVATE KEY" PEM block holding an
// Ed25519 key (as written by LoadOrGenerateKey or `openssl genpkey
// -algorithm ed25519`). Errors never contain key material.
func ParsePrivateKeyPEM(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("auth: no PEM block found in private key")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("auth: PEM block is %q, want \"PRIVATE KEY\" (PKCS#8)", block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("auth: private key is not valid PKCS#8")
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("auth: private key is %T, want Ed25519", k)
	}
	return priv, nil
}

// MarshalPrivateKeyPEM encodes key as a PKCS#8 "PRIVATE KEY" PEM block.
func MarshalPrivateKeyPEM(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("auth: marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePublicKeyPEM parses a PKIX "PUBLIC KEY" PEM block holding an Ed25519
// public key, e.g. a retired signing key that should still verify.
func ParsePublicKeyPEM(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("auth: no PEM block found in public key")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("auth: PEM block is %q, want \"PUBLIC KEY\"", block.Type)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, errors.New("auth: public key is not valid PKIX")
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("auth: public key is %T, want Ed25519", k)
	}
	return pub, nil
}

// MarshalPublicKeyPEM encodes pub as a PKIX "PUBLIC KEY" PEM block.
func MarshalPublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("auth: marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// LoadOrGenerateKey reads dataDir/jwt-ed25519.pem, or creates it (mode 0600,
// directory 0700) with a new key if it does not exist. It is meant for
// development; production passes the key through configuration and
// ParsePrivateKeyPEM. An existing file readable or writable by group or
// others is refused, as ssh does. Concurrent first calls agree on one key.
func LoadOrGenerateKey(dataDir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dataDir, KeyFileName)
	if key, err := readKeyFile(path); !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: create key directory: %w", err)
	}
	key, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	data, err := MarshalPrivateKeyPEM(key)
	if err != nil {
		return nil, err
	}
	// Write to a temporary file and link it into place: the key file is
	// never seen half-written, and an existing key is never overwritten.
	tmp, err := os.CreateTemp(dataDir, ".jwt-ed25519-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("auth: create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("auth: key file mode: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("auth: write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("auth: write key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("auth: write key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKeyFile(path) // lost a race with another process
		}
		return nil, fmt.Errorf("auth: install key file: %w", err)
	}
	return key, nil
}

func readKeyFile(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("auth: open key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("auth: stat key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("auth: key file %s has mode %v; it must not be accessible by group or others (chmod 600)", path, st.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("auth: read key file: %w", err)
	}
	key, err := ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// KeyID returns the RFC 7638 JWK thumbprint of an Ed25519 public key (members
// crv, kty, x per RFC 8037), base64url-encoded without padding.
func KeyID(pub ed25519.PublicKey) string {
	jwk := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(jwk))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// KeySet is the current signing key plus the public keys that verify access
// tokens (the current one and previous ones still in rotation), indexed by
// kid. It is immutable; rotate by building a new KeySet.
type KeySet struct {
	signing    ed25519.PrivateKey
	signingKID string
	verify     map[string]ed25519.PublicKey
}

// NewKeySet returns a KeySet that signs with current and verifies tokens
// signed by current or any of previous.
func NewKeySet(current ed25519.PrivateKey, previous ...ed25519.PublicKey) (*KeySet, error) {
	if len(current) != ed25519.PrivateKeySize {
		return nil, errors.New("auth: signing key is not an Ed25519 private key")
	}
	pub := current.Public().(ed25519.PublicKey)
	ks := &KeySet{
		signing:    current,
		signingKID: KeyID(pub),
		verify:     map[string]ed25519.PublicKey{},
	}
	ks.verify[ks.signingKID] = pub
	for i, p := range previous {
		if len(p) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("auth: previous key %d is not an Ed25519 public key", i)
		}
		ks.verify[KeyID(p)] = append(ed25519.PublicKey(nil), p...)
	}
	return ks, nil
}

// CurrentKeyID returns the kid of the signing key.
func (ks *KeySet) CurrentKeyID() string { return ks.signingKID }

// PublicKey returns the verification key with the given kid.
func (ks *KeySet) PublicKey(kid string) (ed25519.PublicKey, bool) {
	k, ok := ks.verify[kid]
	return k, ok
}

// KeyIDs returns the kids of all verification keys, sorted.
func (ks *KeySet) KeyIDs() []string {
	ids := make([]string, 0, len(ks.verify))
	for id := range ks.verify {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
