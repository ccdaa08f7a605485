package domain

import (
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
		InsecureTLS  bool   `json:"insecure_tls"`
	}
)

func (ClusterRegistered) EventType() string { return "cluster_registered" }

var clusterEvents = []func() Event{
	func() Event { return &ClusterRegistered{} },
}

// Cluster is a registered Proxmox VE cluster.
type Cluster struct {
	ID           uuid.UUID
	Name         string
	APIURL       string
	TokenID      string
	SealedSecret string
	InsecureTLS  bool
	CreatedAt    time.Time
	Version      int64
}

// Apply mutates the cluster by one recorded event.
func (c *Cluster) Apply(e Event, at time.Time) {
	switch e := e.(type) {
	case *ClusterRegistered:
		c.Name, c.APIURL, c.TokenID, c.SealedSecret, c.InsecureTLS, c.CreatedAt = e.Name, e.APIURL, e.TokenID, e.SealedSecret, e.InsecureTLS, at
	}
	c.Version++
}

// Exists reports whether the cluster has been registered.
func (c *Cluster) Exists() bool { return c.Version > 0 }

var tokenIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+![A-Za-z][A-Za-z0-9._-]*$`)

// RegisterCluster validates a registration; sealed is the encrypted secret.
func RegisterCluster(name, apiURL, tokenID, secret string, insecure bool, seal func(string) (string, error)) ([]Event, error) {
	f := fieldErrors{}
	name = validateTenantName(f, name)
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		f.add("api_url", "must be an http(s) URL of the Proxmox VE API, e.g. https://pve.example:8006/api2/json")
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
	sealed, err := seal(secret)
	if err != nil {
		return nil, err
	}
	return []Event{&ClusterRegistered{Name: name, APIURL: strings.TrimRight(apiURL, "/"), TokenID: tokenID, SealedSecret: sealed, InsecureTLS: insecure}}, nil
}
