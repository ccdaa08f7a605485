package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
)

// applier is an aggregate rebuilt from its events.
type applier interface {
	Apply(e domain.Event, at time.Time)
}

// loadInto replays a stream into agg, page by page, and returns its version.
func (h *Handler) loadInto(ctx context.Context, tenant uuid.UUID, stream eventstore.StreamID, agg applier) (int64, error) {
	var version int64
	for {
		page, err := h.store.ReadStream(ctx, tenant, stream, version+1, eventstore.MaxReadLimit)
		if err != nil {
			return 0, err
		}
		for _, e := range page {
			de, err := domain.DecodeEvent(e.Type, e.Data)
			if err != nil {
				return 0, fmt.Errorf("load %s: %w", stream, err)
			}
			agg.Apply(de, e.RecordedAt)
			version = e.StreamVersion
		}
		if len(page) < eventstore.MaxReadLimit {
			return version, nil
		}
	}
}

func tenantStream(id uuid.UUID) eventstore.StreamID {
	return eventstore.StreamID{Type: domain.StreamTenant, ID: id}
}

func userStream(id uuid.UUID) eventstore.StreamID {
	return eventstore.StreamID{Type: domain.StreamUser, ID: id}
}

func sessionStream(id uuid.UUID) eventstore.StreamID {
	return eventstore.StreamID{Type: domain.StreamSession, ID: id}
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
	t, err := h.LoadTenant(ctx, tenant)
	if err != nil {
		return err
	}
	return t.AcceptsCommands()
}
