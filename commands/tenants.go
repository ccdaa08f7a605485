package commands

import (
	"context"

	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
)

// CreateTenant opens a new tenant (platform administrators only; the route
// checks tenant:manage).
func (h *Handler) CreateTenant(ctx context.Context, a Actor, o Options, name string, quota domain.Quota) (Result, error) {
	id := uuid.Must(uuid.NewV7())
	if o.IdempotencyKey != "" {
		// A retried create must land on the same stream to be recognised.
		id = commandID(a, "tenant:"+o.IdempotencyKey)
	}
	return h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		events, err := domain.CreateTenant(name, quota)
		return change{tenant: id, stream: tenantStream(id), events: events}, err
	})
}

// UpdateTenant renames a tenant and/or changes its quota.
func (h *Handler) UpdateTenant(ctx context.Context, a Actor, o Options, id uuid.UUID, name *string, quota *domain.Quota) (Result, error) {
	return h.onTenant(ctx, a, o, id, func(t *domain.Tenant) ([]domain.Event, error) { return t.Update(name, quota) })
}

// SuspendTenant stops a tenant's commands and sign-ins, and ends its
// users' sessions in the same transaction: their refresh tokens stop
// working, their access tokens too (the API then answers 403
// tenant_suspended, see SessionAccess), and so do their event streams.
// Sessions stay ended after a resume; its users sign in again.
func (h *Handler) SuspendTenant(ctx context.Context, a Actor, o Options, id uuid.UUID) (Result, error) {
	return h.onTenantWith(ctx, a, o, id, (*domain.Tenant).Suspend, func(ctx context.Context, tx TxTables) error {
		return tx.Sessions().EndAllOfTenant(ctx, id, "tenant_suspended")
	})
}

// ResumeTenant lifts a suspension.
func (h *Handler) ResumeTenant(ctx context.Context, a Actor, o Options, id uuid.UUID) (Result, error) {
	return h.onTenant(ctx, a, o, id, (*domain.Tenant).Resume)
}

func (h *Handler) onTenant(ctx context.Context, a Actor, o Options, id uuid.UUID, decide func(*domain.Tenant) ([]domain.Event, error)) (Result, error) {
	return h.onTenantWith(ctx, a, o, id, decide, nil)
}

// onTenantWith is onTenant with side, when set, writing side tables in the
// same transaction as the events.
func (h *Handler) onTenantWith(ctx context.Context, a Actor, o Options, id uuid.UUID, decide func(*domain.Tenant) ([]domain.Event, error),
	side func(context.Context, TxTables) error) (Result, error) {
	return h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		t, err := h.LoadTenant(ctx, id)
		if err != nil {
			return change{}, err
		}
		if !t.Exists() {
			return change{}, domain.ErrNotFound
		}
		events, err := decide(t)
		// The tenant's lock orders the change with the groups of VM
		// creates, which check under it that they were decided on the
		// tenant's latest version (tenant_cache.go).
		return change{tenant: id, stream: tenantStream(id), version: t.Version, events: events, side: side, lockTenant: true}, err
	})
}
