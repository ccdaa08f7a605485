package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrGenerateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := LoadOrGenerateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, KeyFileName)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v", st.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Fatalf("not a PKCS#8 PEM file: %q", data[:30])
	}
	k2, err := LoadOrGenerateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("second load returned a different key")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrGenerateKey(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key accepted: %v", err)
	}

	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, KeyFileName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrGenerateKey(bad); err == nil {
		t.Fatal("garbage key file accepted")
	}
}

func TestLoadOrGenerateKeyConcurrent(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	keys := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := LoadOrGenerateKey(dir)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if !bytes.Equal(keys[0], keys[i]) {
			t.Fatal("concurrent first loads disagree on the key")
		}
	}
}

func TestPEMRoundTripAndRejects(t *testing.T) {
	k := mustKey(t)
	pub := k.Public().(ed25519.PublicKey)
	privPEM, err := MarshalPrivateKeyPEM(k)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePrivateKeyPEM(privPEM)
	if err != nil || !got.Equal(k) {
		t.Fatalf("ParsePrivateKeyPEM = %v", err)
	}
	pubPEM, err := MarshalPublicKeyPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	gotPub, err := ParsePublicKeyPEM(pubPEM)
	if err != nil || !gotPub.Equal(pub) {
		t.Fatalf("ParsePublicKeyPEM = %v", err)
	}

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPubDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	ecSEC1, _ := x509.MarshalECPrivateKey(ec)
	enc := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }

	for name, data := range map[string][]byte{
		"empty":          nil,
		"not PEM":        []byte("ACCOUNTDB_JWT_PRIVATE_KEY"),
		"public as priv": pubPEM,
		"ECDSA PKCS#8":   enc("PRIVATE KEY", ecDER),
		"EC PRIVATE KEY": enc("EC PRIVATE KEY", ecSEC1),
		"corrupt DER":    enc("PRIVATE KEY", []byte{0x30, 0x01, 0x00}),
	} {
		if _, err := ParsePrivateKeyPEM(data); err == nil {
			t.Errorf("ParsePrivateKeyPEM(%s) succeeded", name)
		} else if strings.Contains(err.Error(), "MC4CAQAw") { // start of the base64 of an Ed25519 PKCS#8 key
			t.Errorf("error leaks key material: %v", err)
		}
	}
	for name, data := range map[string][]byte{
		"empty":       nil,
		"priv as pub": privPEM,
		"ECDSA":       enc("PUBLIC KEY", ecPubDER),
		"corrupt DER": enc("PUBLIC KEY", []byte{0x30, 0x01, 0x00}),
	} {
		if _, err := ParsePublicKeyPEM(data); err == nil {
			t.Errorf("ParsePublicKeyPEM(%s) succeeded", name)
		}
	}
}
