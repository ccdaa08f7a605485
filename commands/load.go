package commands

import (
	"context"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
)

// applier is an aggregate rebuilt from its events.
type applier interface {
	Apply(e domain.Event, at time.Time)
}

// loadInto rebuilds agg from its stream, starting from the latest snapshot
// (see snapshots.go), and returns its version. With no time bound the fold
// reads every committed event: appends to a stream are serialised (see
// eventstore.AppendScopeSQL), so a committed version has no missing one
// below it.
func (h *Handler) loadInto(ctx context.Context, tenant uuid.UUID, stream eventlog.StreamID, agg applier) (int64, error) {
	return h.replayWithSnapshots(ctx, tenantdb.Tenant(tenant), stream, time.Time{}, agg)
}

func tenantStream(id uuid.UUID) eventlog.StreamID {
	return eventlog.StreamID{Type: domain.StreamTenant, ID: id}
}

func userStream(id uuid.UUID) eventlog.StreamID {
	return eventlog.StreamID{Type: domain.StreamUser, ID: id}
}

func sessionStream(id uuid.UUID) eventlog.StreamID {
	return eventlog.StreamID{Type: domain.StreamSession, ID: id}
}

// LoadTenant rebuilds a tenant from its events.
func (h *Handler) LoadTenant(ctx context.Context, id uuid.UUID) (*domain.Tenant, error) {
	t := &domain.Tenant{ID: id}
	if _, err := h.loadInto(ctx, id, tenantStream(id), t); err != nil {
		return nil, err
	}
	return t, nil
}

// LoadUser rebuilds a user of tenant from its events.
func (h *Handler) LoadUser(ctx context.Context, tenant, id uuid.UUID) (*domain.User, error) {
	u := &domain.User{ID: id, TenantID: tenant}
	if _, err := h.loadInto(ctx, tenant, userStream(id), u); err != nil {
		return nil, err
	}
	return u, nil
}

// tenantAcceptsCommands is the first check of every tenant-scoped command.
// The platform tenant has no stream and is always open.
func (h *Handler) tenantAcceptsCommands(ctx context.Context, tenant uuid.UUID) error {
	if tenant == domain.PlatformTenant {
		return nil
	}
	_, err := h.openTenant(ctx, tenant)
	return err
}

// openTenant loads a tenant that accepts commands (the platform tenant
// always does), for a command that decides more on its state.
func (h *Handler) openTenant(ctx context.Context, id uuid.UUID) (*domain.Tenant, error) {
	t, err := h.LoadTenant(ctx, id)
	if err != nil {
		return nil, err
	}
	if id != domain.PlatformTenant {
		if err := t.AcceptsCommands(); err != nil {
			return nil, err
		}
	}
	return t, nil
}
