package acceptance_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/accountdb/accountdb/pvesim"
)

// POST /v1/clusters: the token only ever travels over TLS the agent can
// verify. Plain http:// and insecure_tls are refused and record nothing; a
// pinned certificate fingerprint is accepted.
func TestClusterRegistrationNeedsVerifiableTLS(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	d := openDB(t, s)
	pa := s.Login(t, s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)).AccessToken
	body := func(apiURL string, extra map[string]any) map[string]any {
		b := map[string]any{"name": "pve-" + strings.NewReplacer(":", "", "/", "", ".", "").Replace(apiURL)[:12], "api_url": apiURL,
			"token_id": pvesim.DefaultTokenID, "token_secret": pvesim.DefaultTokenSecret}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	before := d.events(t)
	for _, c := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"plain http", body("http://pve.example:8006/api2/json", nil), "api_url"},
		{"plain http on loopback outside dev", body("http://127.0.0.1:8006/api2/json", nil), "api_url"},
		{"verification off", body("https://pve.example:8006/api2/json", map[string]any{"insecure_tls": true}), "insecure_tls"},
		{"a fingerprint that is not SHA-256", body("https://pve.example:8006/api2/json", map[string]any{"tls_fingerprint": "AB:CD:EF"}), "tls_fingerprint"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := wantProblem(t, s.Do(t, pa, http.MethodPost, "/v1/clusters", c.body, nil), http.StatusBadRequest, "validation_failed")
			if _, ok := fieldErrors(t, p)[c.field]; !ok {
				t.Fatalf("no error on %s: %v", c.field, p)
			}
		})
	}
	if n := d.events(t); n != before {
		t.Fatalf("%d events recorded by refused registrations", n-before)
	}
	// Lower case without colons is accepted and shown as `pvenode cert info`
	// prints it, so an admin can compare the two.
	fp := strings.Repeat("0a", 32)
	r := s.Do(t, pa, http.MethodPost, "/v1/clusters", body("https://pve.example:8006/api2/json", map[string]any{"tls_fingerprint": fp}), nil)
	wantStatus(t, r, http.StatusAccepted)
	var list struct {
		Items []struct {
			APIURL         string `json:"api_url"`
			TLSFingerprint string `json:"tls_fingerprint"`
		} `json:"items"`
	}
	wantStatus(t, s.Do(t, pa, http.MethodGet, "/v1/clusters", nil, &list, "X-Consistency-Token", r.Header.Get("X-Consistency-Token")), http.StatusOK)
	want := strings.TrimSuffix(strings.Repeat("0A:", 32), ":")
	found := false
	for _, c := range list.Items {
		if c.APIURL == "https://pve.example:8006/api2/json" {
			found = true
			if c.TLSFingerprint != want {
				t.Fatalf("GET /v1/clusters shows tls_fingerprint %q, want %q", c.TLSFingerprint, want)
			}
		}
	}
	if !found {
		t.Fatalf("the registered cluster is not listed: %+v", list.Items)
	}
}
