package commands

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
)

// ConsoleCluster is what the console proxy needs to reach a VM's cluster:
// its API and, opened from its sealed form, the API token secret. The
// secret must stay in memory for the one request it authenticates.
type ConsoleCluster struct {
	APIURL, TokenID, TokenSecret, TLSFingerprint string
}

// ConsoleCluster loads cluster id's registration and opens its token
// secret with the secrets key the core shares with the agent.
func (h *Handler) ConsoleCluster(ctx context.Context, id uuid.UUID) (ConsoleCluster, error) {
	if h.vault == nil {
		return ConsoleCluster{}, ErrNoVault
	}
	c := &domain.Cluster{ID: id}
	if _, err := h.loadInto(ctx, domain.PlatformTenant, clusterStream(id), c); err != nil {
		return ConsoleCluster{}, err
	}
	if !c.Exists() {
		return ConsoleCluster{}, domain.ErrNotFound
	}
	secret, err := h.vault.Open(c.SealedSecret, domain.ClusterSecretBinding(id, c.APIURL))
	if err != nil {
		return ConsoleCluster{}, fmt.Errorf("console: cluster %s: open the token secret: %w", id, err)
	}
	return ConsoleCluster{APIURL: c.APIURL, TokenID: c.TokenID, TokenSecret: secret, TLSFingerprint: c.TLSFingerprint}, nil
}

func consoleStream(id uuid.UUID) eventlog.StreamID {
	return eventlog.StreamID{Type: domain.StreamConsole, ID: id}
}

// RecordConsoleOpened starts console id's stream in the VM's tenant.
func (h *Handler) RecordConsoleOpened(ctx context.Context, a Actor, tenant, id uuid.UUID, e domain.ConsoleOpened) error {
	return h.appendConsole(ctx, a, tenant, id, eventstore.NoStream(), &e)
}

// RecordConsoleClosed ends console id's stream.
func (h *Handler) RecordConsoleClosed(ctx context.Context, a Actor, tenant, id uuid.UUID, e domain.ConsoleClosed) error {
	return h.appendConsole(ctx, a, tenant, id, eventstore.Exactly(1), &e)
}

func (h *Handler) appendConsole(ctx context.Context, a Actor, tenant, id uuid.UUID, expected eventstore.ExpectedVersion, e domain.Event) error {
	app := eventstore.Append{
		Stream: consoleStream(id), TenantID: tenant, Expected: expected,
		ActorID: a.UserID, CorrelationID: a.CorrelationID, Metadata: a.Metadata,
		Events: []eventstore.NewEvent{{Type: e.EventType(), Data: e}},
	}
	if err := h.seal(ctx, &app); err != nil {
		return fmt.Errorf("record %s: %w", e.EventType(), err)
	}
	_, err := h.store.Append(ctx, app)
	if err != nil {
		return fmt.Errorf("record %s: %w", e.EventType(), err)
	}
	return nil
}
