package commands

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
)

// Sealer encrypts an append's personal data (the fields domain's table
// marks personal, and the request metadata) before it reaches the event
// store, so that the log and its hash chain hold only ciphertext a
// subject's erasure makes unreadable. privacy.Sealer is the one; see
// docs/PRIVACY.md.
type Sealer interface {
	SealAppend(ctx context.Context, a *eventstore.Append) error
}

// WithSealer has every append of h sealed by s. Without one personal data is
// recorded as it is (tools and tests that need no erasure).
func (h *Handler) WithSealer(s Sealer) *Handler {
	h.sealer = s
	return h
}

// seal seals app with the handler's sealer, if it has one. Every append the
// handler makes passes here: newAppend (commands and their linked changes),
// record and appendConsole.
func (h *Handler) seal(ctx context.Context, app *eventstore.Append) error {
	if h.sealer == nil {
		return nil
	}
	if err := h.sealer.SealAppend(ctx, app); err != nil {
		return fmt.Errorf("seal personal data of %s: %w", app.Stream, err)
	}
	return nil
}

// PrivacyWriter erases a person from the side tables, inside the
// transaction of their user_erased event.
type PrivacyWriter interface {
	// EraseUser removes what the side tables hold of user (credentials,
	// sessions' addresses and agents, API tokens' last addresses, two-factor,
	// identity links, console tickets, snapshots of their stream) and
	// destroys their keys.
	EraseUser(ctx context.Context, tenant, user uuid.UUID) error
}

// KeyForgetter drops a subject's cached keys in this process once their
// erasure committed (privacy.PGKeys); other processes' caches expire.
type KeyForgetter interface {
	Forget(tenant, subject uuid.UUID)
}

// WithKeyForgetter has h drop erased subjects' cached keys at once.
func (h *Handler) WithKeyForgetter(f KeyForgetter) *Handler {
	h.forgetter = f
	return h
}

// EraseUser erases a person at a tenant administrator's request (POST
// /v1/users/{id}/erase): confirmEmail must be their email. Their keys are
// destroyed and the side tables cleaned in the transaction of user_erased;
// the projectors clean the read models from it. The tenant must keep an
// admin, and nobody erases a user who holds a permission they do not.
func (h *Handler) EraseUser(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, confirmEmail string) (Result, error) {
	return h.eraseUser(ctx, a, o, tenant, id, func(u *domain.User) ([]domain.Event, error) {
		return u.Erase(confirmEmail, "request")
	})
}

// EraseUserByOperator erases a person named by id by an operator on the host
// (accountdb admin erase-user), with no email to confirm: also a user whose
// email can no longer be read.
func (h *Handler) EraseUserByOperator(ctx context.Context, a Actor, tenant, id uuid.UUID) (Result, error) {
	return h.eraseUser(ctx, a, Options{}, tenant, id, func(u *domain.User) ([]domain.Event, error) {
		return u.EraseWithoutConfirmation("admin")
	})
}

func (h *Handler) eraseUser(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, decide func(*domain.User) ([]domain.Event, error)) (Result, error) {
	res, err := h.onUserWith(ctx, a, o, tenant, id, decide, func(ctx context.Context, tx TxTables) error {
		return tx.Privacy().EraseUser(ctx, tenant, id)
	})
	if err == nil && h.forgetter != nil {
		h.forgetter.Forget(tenant, id)
	}
	return res, err
}

// SetTenantPrivacyPolicy sets how many days tenant id's request metadata
// (client IPs, user agents) stays readable (domain.TenantPrivacyPolicySet).
func (h *Handler) SetTenantPrivacyPolicy(ctx context.Context, a Actor, o Options, id uuid.UUID, days int) (Result, error) {
	return h.onTenant(ctx, a, o, id, func(t *domain.Tenant) ([]domain.Event, error) { return t.SetPrivacyPolicy(days) })
}

// RequestMetadataRetention is tenant's retention of request metadata in
// days (the platform tenant, which has no stream, keeps the default).
func (h *Handler) RequestMetadataRetention(ctx context.Context, tenant uuid.UUID) (int, error) {
	if tenant == domain.PlatformTenant {
		return domain.DefaultRequestMetadataDays, nil
	}
	t, err := h.LoadTenant(ctx, tenant)
	if err != nil {
		return 0, err
	}
	if !t.Exists() {
		return 0, domain.ErrNotFound
	}
	return t.RequestMetadataRetention(), nil
}
