package vault_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/vault"
)

func TestSealOpen(t *testing.T) {
	key, err := vault.LoadOrGenerateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := v.Seal("s3cret-token", "cluster-1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "s3cret") {
		t.Fatal("sealed value contains the secret")
	}
	if got, err := v.Open(sealed, "cluster-1"); err != nil || got != "s3cret-token" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := v.Open(sealed, "cluster-2"); !errors.Is(err, vault.ErrSealed) {
		t.Fatalf("moved to another record: %v", err)
	}
	tampered := sealed[:len(sealed)-2] + "AA"
	if _, err := v.Open(tampered, "cluster-1"); !errors.Is(err, vault.ErrSealed) {
		t.Fatalf("tampered: %v", err)
	}
	other, _ := vault.New(make([]byte, 32))
	if _, err := other.Open(sealed, "cluster-1"); !errors.Is(err, vault.ErrSealed) {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	k1, err := vault.LoadOrGenerateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := vault.LoadOrGenerateKey(dir)
	if err != nil || string(k1) != string(k2) {
		t.Fatalf("key not stable across loads: %v", err)
	}
	st, err := os.Stat(filepath.Join(dir, vault.KeyFileName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st.Mode(), err)
	}
	if _, err := vault.ParseKey("short"); err == nil {
		t.Fatal("short key accepted")
	}
	if _, err := vault.New([]byte("short")); err == nil {
		t.Fatal("short key accepted by New")
	}
}
