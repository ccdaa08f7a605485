package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/domain"
)

func seal(secret, apiURL string) (string, error) { return "sealed:" + apiURL, nil }

func register(apiURL string, t domain.ClusterTransport) (*domain.ClusterRegistered, error) {
	events, err := domain.RegisterCluster("pve", apiURL, "root@pam!accountdb", "0123456789abcdef", t, seal)
	if err != nil {
		return nil, err
	}
	return events[0].(*domain.ClusterRegistered), nil
}

func fieldError(t *testing.T, err error, field string) {
	t.Helper()
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a validation error on %s, got %v", field, err)
	}
	if _, ok := ve.Fields[field]; !ok {
		t.Fatalf("want a validation error on %s, got %v", field, ve.Fields)
	}
}

func TestClusterRegistrationTransport(t *testing.T) {
	fp := strings.Repeat("ab:", 31) + "ab"
	c, err := register("https://pve.example:8006/api2/json/", domain.ClusterTransport{TLSFingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	if c.APIURL != "https://pve.example:8006/api2/json" || c.TLSFingerprint != strings.ToUpper(fp) || c.InsecureTLS {
		t.Fatalf("registered %+v", c)
	}
	if c.SealedSecret != "sealed:"+c.APIURL {
		t.Fatalf("the secret is sealed for %q, not the normalised URL", c.SealedSecret)
	}
	// Colons are optional; no fingerprint means the system's CAs.
	if c, err := register("https://pve.example:8006", domain.ClusterTransport{TLSFingerprint: strings.Repeat("AB", 32)}); err != nil || c.TLSFingerprint != strings.ToUpper(fp) {
		t.Fatalf("fingerprint without colons: %+v, %v", c, err)
	}
	if c, err := register("https://pve.example:8006", domain.ClusterTransport{}); err != nil || c.TLSFingerprint != "" {
		t.Fatalf("no fingerprint: %+v, %v", c, err)
	}

	_, err = register("http://pve.example:8006/api2/json", domain.ClusterTransport{})
	fieldError(t, err, "api_url")
	_, err = register("http://pve.example:8006/api2/json", domain.ClusterTransport{AllowLoopbackHTTP: true})
	fieldError(t, err, "api_url")
	_, err = register("http://127.0.0.1:18006/api2/json", domain.ClusterTransport{})
	fieldError(t, err, "api_url")
	if _, err := register("http://127.0.0.1:18006/api2/json", domain.ClusterTransport{AllowLoopbackHTTP: true}); err != nil {
		t.Fatalf("dev's loopback simulator: %v", err)
	}
	_, err = register("https://pve.example:8006", domain.ClusterTransport{InsecureTLS: true})
	fieldError(t, err, "insecure_tls")
	for _, bad := range []string{"AB:CD", strings.Repeat("zz", 32), strings.Repeat("AB", 20)} {
		_, err = register("https://pve.example:8006", domain.ClusterTransport{TLSFingerprint: bad})
		fieldError(t, err, "tls_fingerprint")
	}
}
