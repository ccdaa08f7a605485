package domain_test

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/domain"
)

// FuzzRegisterCluster: whatever the API URL and fingerprint, validation
// never panics, and what it accepts is safe to send a token to: https, or
// http only to a loopback host and only when development allows it; no
// credentials in the URL; the secret sealed for exactly the URL recorded;
// the fingerprint in its one printed form, which normalises to itself.
func FuzzRegisterCluster(f *testing.F) {
	for _, seed := range []struct {
		url, fingerprint string
		loopbackHTTP     bool
	}{
		{"https://pve.example:8006/api2/json", "", false},
		{"https://pve.example:8006/api2/json/", strings.Repeat("ab:", 31) + "ab", false},
		{"http://127.0.0.1:18006/api2/json", "", true},
		{"http://127.0.0.1:18006/api2/json", "", false},
		{"http://[::1]:8006/", "", true},
		{"http://localhost.evil.example/", "", true},
		{"https://user:pw@pve.example/", "", false},
		{"HTTPS://PVE.EXAMPLE", strings.Repeat("AB", 32), false},
		{"ftp://pve.example", "zz", false},
		{"https://", "", false},
		{"https://pve.example\x00/", "", false},
		{"//pve.example", "", true},
		{"https://pve.example/%zz", strings.Repeat("0", 63), false},
	} {
		f.Add(seed.url, seed.fingerprint, seed.loopbackHTTP)
	}
	f.Fuzz(func(t *testing.T, apiURL, fingerprint string, loopbackHTTP bool) {
		sealedFor := ""
		events, err := domain.RegisterCluster("pve", apiURL, "root@pam!accountdb", "0123456789abcdef",
			domain.ClusterTransport{TLSFingerprint: fingerprint, AllowLoopbackHTTP: loopbackHTTP},
			func(secret, u string) (string, error) { sealedFor = u; return "sealed", nil })
		if err != nil {
			return
		}
		ev := events[0].(*domain.ClusterRegistered)
		if ev.APIURL != sealedFor {
			t.Fatalf("recorded %q but sealed for %q", ev.APIURL, sealedFor)
		}
		u, err := url.Parse(ev.APIURL)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", apiURL, err)
		}
		if u.User != nil {
			t.Fatalf("accepted credentials in the URL %q", apiURL)
		}
		switch strings.ToLower(u.Scheme) {
		case "https":
		case "http":
			host := u.Hostname()
			ip, ipErr := netip.ParseAddr(host)
			if !loopbackHTTP || (host != "localhost" && (ipErr != nil || !ip.IsLoopback())) {
				t.Fatalf("accepted plain http to %q (loopback allowed: %v)", host, loopbackHTTP)
			}
		default:
			t.Fatalf("accepted scheme %q in %q", u.Scheme, apiURL)
		}
		if again, ok := domain.NormalizeFingerprint(ev.TLSFingerprint); !ok || again != ev.TLSFingerprint {
			t.Fatalf("fingerprint %q recorded as %q, which normalises to %q (%v)", fingerprint, ev.TLSFingerprint, again, ok)
		}
	})
}
