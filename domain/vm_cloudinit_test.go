package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/shacrypt"
)

func TestNewCloudInit(t *testing.T) {
	key := ed25519Key(t, "alice@laptop")
	hashed := 0
	hash := func(pw string) string { hashed++; return shacrypt.SHA512(pw) }
	ci, err := domain.NewCloudInit(domain.CloudInitInput{
		User: "alice", SSHKeys: []string{key, key}, Password: "correct horse battery",
		Nameservers: []string{"192.0.2.53", " 2001:db8::53 "}, SearchDomain: "Example.NET",
	}, "web-1", hash)
	if err != nil {
		t.Fatal(err)
	}
	if ci.User != "alice" || ci.Hostname != "web-1" || len(ci.SSHKeys) != 1 || ci.SSHKeys[0] != strings.TrimSuffix(key, " alice@laptop") ||
		!strings.HasPrefix(ci.SSHKeyFingerprints[0], "SHA256:") || ci.SearchDomain != "example.net" ||
		strings.Join(ci.Nameservers, " ") != "192.0.2.53 2001:db8::53" {
		t.Fatalf("cloud-init = %+v", ci)
	}
	if hashed != 1 || !strings.HasPrefix(ci.PasswordHash, "$6$") || !shacrypt.Verify(ci.PasswordHash, "correct horse battery") {
		t.Fatalf("password hash %q (hashed %d times)", ci.PasswordHash, hashed)
	}
	if ci, err := domain.NewCloudInit(domain.CloudInitInput{Hostname: "db-2"}, "web-1", hash); err != nil || ci.Hostname != "db-2" || ci.PasswordHash != "" {
		t.Fatalf("hostname given, no password: %+v %v", ci, err)
	}
}

func TestNewCloudInitRefuses(t *testing.T) {
	hash := func(string) string { t.Fatal("a refused request must not hash the password"); return "" }
	_, err := domain.NewCloudInit(domain.CloudInitInput{
		User: "Root!", Password: "short", Hostname: "not_a_label", SSHKeys: []string{ed25519Key(t, ""), "nope"},
		Nameservers: []string{"8.8.8.8", "dns.example"}, SearchDomain: "-bad-.example",
	}, "web-1", hash)
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v", err)
	}
	for _, field := range []string{"cloud_init.user", "cloud_init.password", "cloud_init.hostname", "cloud_init.ssh_keys[1]",
		"cloud_init.nameservers[1]", "cloud_init.search_domain"} {
		if ve.Fields[field] == "" {
			t.Errorf("no error for %s: %v", field, ve.Fields)
		}
	}
	if _, ok := ve.Fields["cloud_init.ssh_keys[0]"]; ok || strings.Contains(err.Error(), "short") {
		t.Fatalf("a valid key is named, or the password leaks into the error: %v", err)
	}
	if _, err := domain.NewCloudInit(domain.CloudInitInput{Password: strings.Repeat("é", 11)}, "web-1", hash); !errors.As(err, &ve) ||
		ve.Fields["cloud_init.password"] != "must be at least 12 characters" {
		t.Fatalf("11 characters: %v", err)
	}
}
