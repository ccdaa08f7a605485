package acceptance_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"
)

func publicKeyLine(t *testing.T, key any, comment string) (line, fingerprint string) {
	t.Helper()
	pub, err := ssh.NewPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	line = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	if comment != "" {
		line += " " + comment
	}
	return line, ssh.FingerprintSHA256(pub)
}

// newSSHKeyLine is a fresh ed25519 public key in authorized_keys form.
func newSSHKeyLine() string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

type sshKeyItem struct {
	ID          uuid.UUID `json:"id"`
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	Fingerprint string    `json:"fingerprint"`
	CreatedAt   time.Time `json:"created_at"`
}

// addSSHKey posts a key and returns the answer's id and consistency token.
func addSSHKey(t *testing.T, s *stacktest.Stack, token, name, key string) (uuid.UUID, string) {
	t.Helper()
	var acc struct {
		ID uuid.UUID `json:"id"`
	}
	r := s.Do(t, token, http.MethodPost, "/v1/users/me/ssh-keys", map[string]string{"name": name, "public_key": key}, &acc)
	wantStatus(t, r, http.StatusAccepted)
	if r.Header.Get("Location") != "/v1/users/me/ssh-keys" {
		t.Fatalf("Location %q", r.Header.Get("Location"))
	}
	return acc.ID, r.Header.Get("X-Consistency-Token")
}

func listSSHKeys(t *testing.T, s *stacktest.Stack, token, consistency string) []sshKeyItem {
	t.Helper()
	var out struct {
		Items []sshKeyItem `json:"items"`
	}
	var headers []string
	if consistency != "" {
		headers = []string{"X-Consistency-Token", consistency}
	}
	r := s.Do(t, token, http.MethodGet, "/v1/users/me/ssh-keys", nil, &out, headers...)
	wantStatus(t, r, http.StatusOK)
	if r.Header.Get("X-Consistency") == "stale" {
		t.Fatal("the list is stale after waiting for the consistency token")
	}
	return out.Items
}

// TestSSHKeys covers a user's SSH keys over HTTP: the accepted key types,
// the list with fingerprints, removal, refusals naming the field and adding
// no event, a duplicate, and another tenant's user who can neither see nor
// remove them.
func TestSSHKeys(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	tenant := s.Tenant(t, "keys")
	alice := s.Login(t, s.User(t, tenant, auth.RoleViewer)).AccessToken
	colleague := s.Login(t, s.User(t, tenant, auth.RoleTenantAdmin)).AccessToken
	other := s.Login(t, s.User(t, s.Tenant(t, "keys-other"), auth.RoleTenantAdmin)).AccessToken

	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ed, edFP := publicKeyLine(t, edPub, "alice@laptop")
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ecLine, ecFP := publicKeyLine(t, &ec.PublicKey, "")
	rsa3072, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	rsaLine, rsaFP := publicKeyLine(t, &rsa3072.PublicKey, "ops")

	edID, _ := addSSHKey(t, s, alice, "", ed)
	addSSHKey(t, s, alice, "work", ecLine)
	_, tok := addSSHKey(t, s, alice, "old box", rsaLine)
	keys := listSSHKeys(t, s, alice, tok)
	if len(keys) != 3 {
		t.Fatalf("keys = %+v", keys)
	}
	want := []sshKeyItem{{ID: edID, Name: "alice@laptop", Type: "ssh-ed25519", Fingerprint: edFP},
		{Name: "work", Type: "ecdsa-sha2-nistp384", Fingerprint: ecFP}, {Name: "old box", Type: "ssh-rsa", Fingerprint: rsaFP}}
	for i, w := range want {
		k := keys[i]
		if (w.ID != uuid.Nil && k.ID != w.ID) || k.Name != w.Name || k.Type != w.Type || k.Fingerprint != w.Fingerprint || k.CreatedAt.IsZero() {
			t.Errorf("key %d = %+v, want %+v", i, k, w)
		}
	}

	t.Run("refused keys name public_key and record nothing", func(t *testing.T) {
		rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		weak, _ := publicKeyLine(t, &rsa2048.PublicKey, "")
		otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
		second, _ := publicKeyLine(t, otherPub, "")
		before := d.events(t)
		for name, key := range map[string]string{
			"rsa-2048": weak, "garbage": "not a key", "two keys": ed + "\n" + second,
			"options": `no-pty ` + second, "empty": "",
		} {
			p := wantProblem(t, s.Do(t, alice, http.MethodPost, "/v1/users/me/ssh-keys", map[string]string{"name": "x", "public_key": key}, nil),
				http.StatusBadRequest, "validation_failed")
			if msg, _ := fieldErrors(t, p)["public_key"].(string); msg == "" {
				t.Errorf("%s: no public_key error: %v", name, p)
			} else if name == "rsa-2048" && !strings.Contains(msg, "3072") {
				t.Errorf("rsa-2048: %q", msg)
			}
		}
		p := wantProblem(t, s.Do(t, alice, http.MethodPost, "/v1/users/me/ssh-keys", map[string]any{"public_key": second, "extra": 1}, nil),
			http.StatusBadRequest, "validation_failed")
		if _, ok := fieldErrors(t, p)["extra"]; !ok {
			t.Errorf("unknown field not named: %v", p)
		}
		if after := d.events(t); after != before {
			t.Fatalf("refused requests appended %d events", after-before)
		}
	})

	t.Run("the same key twice is a conflict", func(t *testing.T) {
		wantProblem(t, s.Do(t, alice, http.MethodPost, "/v1/users/me/ssh-keys", map[string]string{"name": "again", "public_key": ed + " other comment"}, nil),
			http.StatusConflict, "conflict")
		// Another user may hold the same public key.
		addSSHKey(t, s, colleague, "shared", ed)
	})

	t.Run("another tenant's user neither sees nor removes them", func(t *testing.T) {
		if keys := listSSHKeys(t, s, other, ""); len(keys) != 0 {
			t.Fatalf("other tenant sees %+v", keys)
		}
		wantProblem(t, s.Do(t, other, http.MethodDelete, "/v1/users/me/ssh-keys/"+edID.String(), nil, nil), http.StatusNotFound, "not_found")
		wantProblem(t, s.Do(t, colleague, http.MethodDelete, "/v1/users/me/ssh-keys/"+edID.String(), nil, nil), http.StatusNotFound, "not_found")
		if n := d.count(t, `SELECT count(*) FROM user_ssh_keys WHERE key_id = $1`, edID); n != 1 {
			t.Fatalf("the key rows = %d", n)
		}
	})

	t.Run("removal", func(t *testing.T) {
		r := s.Do(t, alice, http.MethodDelete, "/v1/users/me/ssh-keys/"+edID.String(), nil, nil)
		wantStatus(t, r, http.StatusAccepted)
		keys := listSSHKeys(t, s, alice, r.Header.Get("X-Consistency-Token"))
		if len(keys) != 2 || keys[0].Fingerprint != ecFP {
			t.Fatalf("after removal: %+v", keys)
		}
		wantProblem(t, s.Do(t, alice, http.MethodDelete, "/v1/users/me/ssh-keys/"+edID.String(), nil, nil), http.StatusNotFound, "not_found")
		wantProblem(t, s.Do(t, alice, http.MethodDelete, "/v1/users/me/ssh-keys/not-a-uuid", nil, nil), http.StatusNotFound, "not_found")
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type IN ('user_ssh_key_added', 'user_ssh_key_removed')
			AND data->>'fingerprint' = $1`, edFP); n != 3 {
			t.Fatalf("events recording the key's fingerprint: %d, want 2 added (alice, colleague) and 1 removed", n)
		}
	})
}
