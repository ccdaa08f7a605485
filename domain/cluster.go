package domain

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Cluster events. A cluster is a Proxmox VE cluster that a platform
// administrator registered; its stream lives in the platform tenant.
type (
	// ClusterRegistered carries the API token secret sealed (encrypted with
	// the secrets key the core and the agent share), never in clear.
	ClusterRegistered struct {
		Name         string `json:"name"`
		APIURL       string `json:"api_url"`
		TokenID      string `json:"token_id"`
		SealedSecret string `json:"sealed_secret"`
		// InsecureTLS is no longer accepted (events recorded before say it;
		// the agent refuses such a cluster): TLSFingerprint pins a
		// self-signed certificate instead.
		InsecureTLS bool `json:"insecure_tls"`
		// TLSFingerprint is the SHA-256 of the API's certificate, upper-case
		// colon-separated hex as `pvenode cert info` prints it; empty to
		// verify the certificate against the system's CAs.
		TLSFingerprint string `json:"tls_fingerprint,omitempty"`
	}
)

func (ClusterRegistered) EventType() string { return "cluster_registered" }

var clusterEvents = []func() Event{
	func() Event { return &ClusterRegistered{} },
	func() Event { return &ClusterIPPoolAdded{} },
	func() Event { return &ClusterBackupStorageSet{} },
}

// Cluster is a registered Proxmox VE cluster.
type Cluster struct {
	ID           uuid.UUID
	Name         string
	APIURL       string
	TokenID      string
	SealedSecret string
	InsecureTLS  bool
	// Pools are the IP address pools serving the cluster's bridges;
	// DefaultPool the one VMs get an address from when they name none.
	Pools       []ClusterPool
	DefaultPool uuid.UUID
	// TLSFingerprint pins the API's certificate ("" = the system's CAs).
	TLSFingerprint string
	// BackupStorage is where its VMs' backups go (cluster_backup.go).
	BackupStorage string
	CreatedAt     time.Time
	Version       int64
}

// Apply mutates the cluster by one recorded event.
func (c *Cluster) Apply(e Event, at time.Time) {
	switch e := e.(type) {
	case *ClusterRegistered:
		c.Name, c.APIURL, c.TokenID, c.SealedSecret, c.InsecureTLS, c.CreatedAt = e.Name, e.APIURL, e.TokenID, e.SealedSecret, e.InsecureTLS, at
		c.TLSFingerprint = e.TLSFingerprint
	case *ClusterBackupStorageSet:
		c.BackupStorage = e.Storage
	case *ClusterIPPoolAdded:
		c.Pools = append(c.Pools, ClusterPool{ID: e.PoolID, Bridge: e.Bridge, CIDR: e.CIDR, IPv6Prefix: e.IPv6Prefix})
		if e.Default {
			c.DefaultPool = e.PoolID
		}
	}
	c.Version++
}

// Exists reports whether the cluster has been registered.
func (c *Cluster) Exists() bool { return c.Version > 0 }

var tokenIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+![A-Za-z][A-Za-z0-9._-]*$`)

// ClusterSecretBinding is the associated data a cluster's token secret is
// sealed with: its id and its API URL. A sealed secret copied into another
// registration (another cluster, or the same cluster at another URL, where
// the token would be sent) does not open; a changed URL needs the secret again.
func ClusterSecretBinding(id uuid.UUID, apiURL string) string {
	return "cluster " + id.String() + " " + apiURL
}

// ClusterTransport is how the agent reaches a cluster's API.
type ClusterTransport struct {
	// TLSFingerprint pins the certificate (SHA-256, hex, colons optional).
	TLSFingerprint string
	// InsecureTLS (verification off) is refused: pin the certificate.
	InsecureTLS bool
	// AllowLoopbackHTTP accepts http:// to a loopback address: development
	// only (`accountdb dev` and its in-process simulator).
	AllowLoopbackHTTP bool
}

// RegisterCluster validates a registration; seal encrypts the secret for the
// normalised API URL it is given (see ClusterSecretBinding). The API must be
// https: the token travels in every request.
func RegisterCluster(name, apiURL, tokenID, secret string, t ClusterTransport, seal func(secret, apiURL string) (string, error)) ([]Event, error) {
	f := fieldErrors{}
	name = validateTenantName(f, name)
	u, err := url.Parse(apiURL)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil:
		f.add("api_url", "must be an https URL of the Proxmox VE API, e.g. https://pve.example:8006/api2/json")
	case u.Scheme == "http" && !(t.AllowLoopbackHTTP && isLoopback(u.Hostname())):
		f.add("api_url", "must be https: the API token would cross the network in clear (pin a self-signed certificate with tls_fingerprint)")
	}
	if t.InsecureTLS {
		f.add("insecure_tls", "is no longer accepted: pin the cluster's certificate with tls_fingerprint (its SHA-256, as `pvenode cert info` prints it)")
	}
	fingerprint, ok := NormalizeFingerprint(t.TLSFingerprint)
	if !ok {
		f.add("tls_fingerprint", "must be a SHA-256 certificate fingerprint: 32 bytes in hex, colons optional (AB:CD:...)")
	}
	if !tokenIDPattern.MatchString(tokenID) {
		f.add("token_id", "must be a Proxmox API token id, user@realm!tokenname")
	}
	if len(secret) < 8 || len(secret) > 256 || strings.ContainsAny(secret, " \t\r\n") {
		f.add("token_secret", "must be the token's secret (8 to 256 characters)")
	}
	if err := f.err(); err != nil {
		return nil, err
	}
	apiURL = strings.TrimRight(apiURL, "/")
	sealed, err := seal(secret, apiURL)
	if err != nil {
		return nil, err
	}
	return []Event{&ClusterRegistered{Name: name, APIURL: apiURL, TokenID: tokenID, SealedSecret: sealed, TLSFingerprint: fingerprint}}, nil
}

// NormalizeFingerprint reads a SHA-256 fingerprint in hex, colons and case
// free, and prints it as `pvenode cert info` does (AB:CD:...). Empty is
// valid: no pin.
func NormalizeFingerprint(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", true
	}
	raw, err := hex.DecodeString(strings.ReplaceAll(s, ":", ""))
	if err != nil || len(raw) != sha256.Size {
		return "", false
	}
	return FormatFingerprint(raw), true
}

// FormatFingerprint prints a digest as upper-case colon-separated hex.
func FormatFingerprint(digest []byte) string {
	parts := make([]string, len(digest))
	for i, b := range digest {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// CertificateFingerprint is cert's SHA-256 fingerprint as `pvenode cert info`
// prints it, what a cluster registration pins.
func CertificateFingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return FormatFingerprint(sum[:])
}
