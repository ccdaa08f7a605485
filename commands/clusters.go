package commands

import (
	"context"
	"errors"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/vault"
	"github.com/google/uuid"
)

// ErrNoVault: the handler has no secrets key, so it cannot accept secrets.
var ErrNoVault = errors.New("commands: no secrets key configured")

// WithVault gives the handler the key that seals secrets it must store.
func (h *Handler) WithVault(v *vault.Vault) *Handler {
	h.vault = v
	return h
}

// AllowLoopbackHTTPClusters lets clusters be registered at http:// loopback
// URLs: `accountdb dev` only, for its in-process simulator.
func (h *Handler) AllowLoopbackHTTPClusters() *Handler {
	h.devHTTP = true
	return h
}

// NewCluster is a Proxmox VE cluster to register.
type NewCluster struct {
	Name        string
	APIURL      string
	TokenID     string
	TokenSecret string
	// TLSFingerprint pins a self-signed certificate (SHA-256).
	TLSFingerprint string
	// InsecureTLS is refused; it remains so that a request asking for it
	// is told why.
	InsecureTLS bool
}

func clusterStream(id uuid.UUID) eventlog.StreamID {
	return eventlog.StreamID{Type: domain.StreamCluster, ID: id}
}

// RegisterCluster records a cluster in the platform tenant. The token secret
// is sealed with the cluster's id and API URL as associated data before it
// reaches the event: only the agent, which shares the key, opens it, and
// only for that cluster at that URL.
func (h *Handler) RegisterCluster(ctx context.Context, a Actor, o Options, nc NewCluster) (Result, error) {
	if h.vault == nil {
		return Result{}, ErrNoVault
	}
	id := uuid.Must(uuid.NewV7())
	if o.IdempotencyKey != "" {
		id = commandID(a, "cluster:"+o.IdempotencyKey)
	}
	seal := func(secret, apiURL string) (string, error) {
		return h.vault.Seal(secret, domain.ClusterSecretBinding(id, apiURL))
	}
	events, err := domain.RegisterCluster(nc.Name, nc.APIURL, nc.TokenID, nc.TokenSecret,
		domain.ClusterTransport{TLSFingerprint: nc.TLSFingerprint, InsecureTLS: nc.InsecureTLS, AllowLoopbackHTTP: h.devHTTP}, seal)
	if err != nil {
		return Result{}, err
	}
	return h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		return change{tenant: domain.PlatformTenant, stream: clusterStream(id), events: events}, nil
	})
}
