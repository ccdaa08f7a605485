package domain_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"
)

func authorizedKey(t testing.TB, key any, comment string) string {
	t.Helper()
	pub, err := ssh.NewPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	if comment != "" {
		out += " " + comment
	}
	return out
}

var rsaKeys = struct {
	once             sync.Once
	k2048, k3072     *rsa.PrivateKey
	err2048, err3072 error
}{}

func rsaKey(t testing.TB, bits int) *rsa.PublicKey {
	t.Helper()
	rsaKeys.once.Do(func() {
		rsaKeys.k2048, rsaKeys.err2048 = rsa.GenerateKey(rand.Reader, 2048)
		rsaKeys.k3072, rsaKeys.err3072 = rsa.GenerateKey(rand.Reader, 3072)
	})
	if rsaKeys.err2048 != nil || rsaKeys.err3072 != nil {
		t.Fatal(rsaKeys.err2048, rsaKeys.err3072)
	}
	if bits == 2048 {
		return &rsaKeys.k2048.PublicKey
	}
	return &rsaKeys.k3072.PublicKey
}

func ed25519Key(t testing.TB, comment string) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return authorizedKey(t, pub, comment)
}

func ecdsaKey(t testing.TB, c elliptic.Curve) string {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return authorizedKey(t, &k.PublicKey, "")
}

// dsaKey builds an ssh-dss authorized_keys line from wire fields of the
// sizes x/crypto/ssh accepts (L=1024, N=160); generating real DSA
// parameters would take seconds.
func dsaKey() string {
	bits := func(n uint) *big.Int { return new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), n-1), big.NewInt(1)) }
	wire := ssh.Marshal(struct {
		Name       string
		P, Q, G, Y *big.Int
	}{"ssh-dss", bits(1024), bits(160), big.NewInt(2), big.NewInt(3)})
	return "ssh-dss " + base64.StdEncoding.EncodeToString(wire)
}

func TestParseSSHPublicKeyAccepts(t *testing.T) {
	for name, tc := range map[string]struct{ line, typ string }{
		"ed25519":  {ed25519Key(t, "alice@laptop"), "ssh-ed25519"},
		"p256":     {ecdsaKey(t, elliptic.P256()), "ecdsa-sha2-nistp256"},
		"p384":     {ecdsaKey(t, elliptic.P384()), "ecdsa-sha2-nistp384"},
		"p521":     {ecdsaKey(t, elliptic.P521()), "ecdsa-sha2-nistp521"},
		"rsa-3072": {authorizedKey(t, rsaKey(t, 3072), "ops"), "ssh-rsa"},
	} {
		k, err := domain.ParseSSHPublicKey("  " + tc.line + "\n")
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		pub, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(tc.line))
		if k.Type != tc.typ || k.Fingerprint != ssh.FingerprintSHA256(pub) || !strings.HasPrefix(k.Fingerprint, "SHA256:") || k.AuthorizedKey != tc.line {
			t.Errorf("%s: %+v", name, k)
		}
	}
}

func TestParseSSHPublicKeyRefuses(t *testing.T) {
	ed := ed25519Key(t, "")
	dsaLine := dsaKey()
	for name, tc := range map[string]struct{ line, want string }{
		"empty":         {"  ", "is required"},
		"garbage":       {"hello world", "is not an OpenSSH public key"},
		"private key":   {"-----BEGIN OPENSSH PRIVATE KEY-----", "is not an OpenSSH public key"},
		"rsa-2048":      {authorizedKey(t, rsaKey(t, 2048), ""), "RSA keys must have at least 3072 bits (this one has 2048)"},
		"dsa":           {dsaLine, `key type "ssh-dss" is not accepted`},
		"two keys":      {ed + "\n" + ed25519Key(t, ""), "exactly one public key"},
		"options":       {`command="/bin/sh",no-pty ` + ed, "must not carry authorized_keys options"},
		"too long":      {ed + " " + strings.Repeat("x", 9000), "must be at most 8192 bytes"},
		"bad comment":   {ed + " a\x01b", "comment"},
		"truncated b64": {ed[:40], "is not an OpenSSH public key"},
	} {
		_, err := domain.ParseSSHPublicKey(tc.line)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
}

func TestUserSSHKeys(t *testing.T) {
	u := &domain.User{}
	if _, err := u.AddSSHKey(uuid.New(), "k", ed25519Key(t, "")); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("no user: %v", err)
	}
	at := time.Now()
	u.Apply(&domain.UserCreated{Email: "a@example.com", DisplayName: "A", Roles: []string{"viewer"}}, at)

	key := ed25519Key(t, "alice@laptop")
	id := uuid.New()
	events, err := u.AddSSHKey(id, "", key)
	if err != nil || len(events) != 1 {
		t.Fatal(events, err)
	}
	added := events[0].(*domain.UserSSHKeyAdded)
	if added.Name != "alice@laptop" || added.KeyID != id || added.PublicKey != key || added.Type != "ssh-ed25519" {
		t.Fatalf("added = %+v", added)
	}
	u.Apply(added, at)

	if _, err := u.AddSSHKey(uuid.New(), "again", key+" other-comment"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("duplicate: %v", err)
	}
	var ve *domain.ValidationError
	if _, err := u.AddSSHKey(uuid.New(), "", ed25519Key(t, "")); !errors.As(err, &ve) || ve.Fields["name"] == "" {
		t.Fatalf("no name and no comment: %v", err)
	}
	if _, err := u.AddSSHKey(uuid.New(), "x", "nope"); !errors.As(err, &ve) || ve.Fields["public_key"] == "" {
		t.Fatalf("bad key: %v", err)
	}
	if _, err := u.RemoveSSHKey(uuid.New()); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("remove unknown: %v", err)
	}
	events, err = u.RemoveSSHKey(id)
	if err != nil || events[0].(*domain.UserSSHKeyRemoved).Fingerprint != added.Fingerprint {
		t.Fatal(events, err)
	}
	u.Apply(events[0], at)
	if len(u.SSHKeys) != 0 {
		t.Fatalf("keys after removal: %+v", u.SSHKeys)
	}
	if _, err := u.AddSSHKey(uuid.New(), "back", key); err != nil {
		t.Fatalf("a removed key can be added again: %v", err)
	}
}

// FuzzParseSSHPublicKey: the parser never panics, and what it accepts is
// canonical: an accepted type, a SHA-256 fingerprint, and an authorized
// key line that parses again to itself.
func FuzzParseSSHPublicKey(f *testing.F) {
	ed := ed25519Key(f, "alice@laptop")
	for _, seed := range []string{
		ed, ecdsaKey(f, elliptic.P256()), ecdsaKey(f, elliptic.P521()),
		authorizedKey(f, rsaKey(f, 3072), "ops"), authorizedKey(f, rsaKey(f, 2048), ""),
		dsaKey(),
		`no-pty ` + ed, ed + "\n" + ed, "ssh-ed25519 AAAA", "ssh-ed25519", "", " \t", "ssh-rsa AAAAB3NzaC1yc2E= x",
		"sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t", "\x00\xff", ed + " \u202e",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		k, err := domain.ParseSSHPublicKey(line)
		if err != nil {
			return
		}
		if !strings.HasPrefix(k.Fingerprint, "SHA256:") || strings.ContainsAny(k.AuthorizedKey, "\r\n") {
			t.Fatalf("accepted %q as %+v", line, k)
		}
		again, err := domain.ParseSSHPublicKey(k.AuthorizedKey)
		if err != nil || again != k {
			t.Fatalf("%q: canonical form %q reparsed to %+v, %v", line, k.AuthorizedKey, again, err)
		}
	})
}
