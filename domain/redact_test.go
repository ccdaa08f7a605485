package domain_test

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/domaintest"
)

// RedactServed replaces every password_hash, at any depth, and leaves the
// rest of the event as it was: numbers exactly, HTML characters unescaped;
// data without one is served byte for byte.
func TestRedactServed(t *testing.T) {
	in := `{"cloud_init":{"user":"a<b>&c","password_hash":"$6$salt$hash"},"items":[{"password_hash":"x"},{"n":12345678901234567890}],"size":1.50}`
	got := string(domain.RedactServed(json.RawMessage(in)))
	want := `{"cloud_init":{"password_hash":"[redacted]","user":"a<b>&c"},"items":[{"password_hash":"[redacted]"},{"n":12345678901234567890}],"size":1.50}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	for _, plain := range []string{`{"user":"ada"}`, `{"note":"password_hash"}`, `not json "password_hash"`} {
		if got := string(domain.RedactServed(json.RawMessage(plain))); got != plain {
			t.Errorf("%s served as %s", plain, got)
		}
	}
}

// Every event type that can carry a cloud-init password's hash is served
// without it: the random corpus's events, encoded as the store keeps them.
func TestRedactServedCoversEveryEventWithAHash(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 30))
	seen := map[string]bool{}
	for range 2000 {
		e := domaintest.VMEvent(r)
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var probe any
		_ = json.Unmarshal(domain.RedactServed(data), &probe)
		if hasHash(probe) {
			t.Fatalf("%s served with a hash: %s", e.EventType(), domain.RedactServed(data))
		}
		if json.Valid(data) && string(domain.RedactServed(data)) != string(data) {
			seen[e.EventType()] = true
		}
	}
	if !seen["vm_create_requested"] || !seen["vm_cloud_init_update_requested"] || !seen["vm_rebuild_requested"] {
		t.Fatalf("the corpus gave hashes in %v only", seen)
	}
}

func hasHash(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if (k == "password_hash" && x != domain.Redacted) || hasHash(x) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if hasHash(x) {
				return true
			}
		}
	}
	return false
}
