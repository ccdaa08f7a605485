package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// NewUser is what creating a user takes.
type NewUser struct {
	TenantID    uuid.UUID
	Email       string
	DisplayName string
	Password    string
	Roles       []string
}

// CreateUser adds a user to a tenant. Its credentials row (email, password
// hash) is written in the same transaction as its events: the unique index on
// email makes emails unique across the platform, and the hash never reaches
// an event.
func (h *Handler) CreateUser(ctx context.Context, a Actor, o Options, nu NewUser) (Result, error) {
	id := uuid.Must(uuid.NewV7())
	if o.IdempotencyKey != "" {
		id = commandID(a, "user:"+o.IdempotencyKey)
	}
	if err := auth.RolesGrantable(a.Roles, nu.Roles); err != nil {
		return Result{}, fmt.Errorf("%w: %v", domain.ErrForbidden, err)
	}
	if nu.TenantID != domain.PlatformTenant && containsRole(nu.Roles, string(auth.RolePlatformAdmin)) {
		return Result{}, &domain.ValidationError{Fields: map[string]string{"roles": "platform_admin belongs to the platform tenant only"}}
	}
	if err := h.tenantAcceptsCommands(ctx, nu.TenantID); err != nil {
		return Result{}, err
	}
	events, err := domain.CreateUser(nu.Email, nu.DisplayName, nu.Roles, auth.ValidRole)
	f := map[string]string{}
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		f = ve.Fields
	} else if err != nil {
		return Result{}, err
	}
	if perr := auth.ValidatePassword(nu.Password); perr != nil {
		f["password"] = perr.Error()
	}
	if len(f) > 0 {
		return Result{}, &domain.ValidationError{Fields: f}
	}
	hash, err := h.passwords.Hash(nu.Password)
	if err != nil {
		return Result{}, err
	}
	created := events[0].(*domain.UserCreated)
	return h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		return change{tenant: nu.TenantID, stream: userStream(id), events: events,
			side: func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO user_credentials (tenant_id, user_id, email, password_hash, roles, status)
					VALUES ($1, $2, $3, $4, $5, $6)`, nu.TenantID, id, created.Email, hash, created.Roles, domain.UserActive)
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.ConstraintName == "user_credentials_email_key" {
					return fmt.Errorf("%w: email already in use", domain.ErrConflict)
				}
				return err
			}}, nil
	})
}

// ChangeUserRoles replaces a user's roles. The actor must hold every
// permission of the roles it grants, and the tenant must keep an admin.
func (h *Handler) ChangeUserRoles(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, roles []string) (Result, error) {
	if err := auth.RolesGrantable(a.Roles, roles); err != nil {
		return Result{}, fmt.Errorf("%w: %v", domain.ErrForbidden, err)
	}
	if tenant != domain.PlatformTenant && containsRole(roles, string(auth.RolePlatformAdmin)) {
		return Result{}, &domain.ValidationError{Fields: map[string]string{"roles": "platform_admin belongs to the platform tenant only"}}
	}
	return h.onUser(ctx, a, o, tenant, id, func(u *domain.User) ([]domain.Event, error) {
		return u.ChangeRoles(roles, auth.ValidRole)
	})
}

// DisableUser stops a user signing in and ends their sessions at once.
func (h *Handler) DisableUser(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID) (Result, error) {
	return h.onUser(ctx, a, o, tenant, id, (*domain.User).Disable)
}

// EnableUser lets a disabled user sign in again.
func (h *Handler) EnableUser(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID) (Result, error) {
	return h.onUser(ctx, a, o, tenant, id, (*domain.User).Enable)
}

// ChangePassword sets a new password. A user changing their own must give
// the current one; an administrator resetting someone else's need not.
func (h *Handler) ChangePassword(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, current, next string) (Result, error) {
	if err := auth.ValidatePassword(next); err != nil {
		return Result{}, &domain.ValidationError{Fields: map[string]string{"password": err.Error()}}
	}
	if id == a.UserID {
		ok, err := h.verifyPassword(ctx, tenant, id, current)
		if err != nil {
			return Result{}, err
		}
		if !ok {
			return Result{}, &domain.ValidationError{Fields: map[string]string{"current_password": "is not correct"}}
		}
	}
	hash, err := h.passwords.Hash(next)
	if err != nil {
		return Result{}, err
	}
	return h.onUserWith(ctx, a, o, tenant, id, (*domain.User).ChangePassword, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE user_credentials SET password_hash = $2, updated_at = now() WHERE user_id = $1`, id, hash)
		return err
	})
}

func (h *Handler) onUser(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, decide func(*domain.User) ([]domain.Event, error)) (Result, error) {
	return h.onUserWith(ctx, a, o, tenant, id, decide, nil)
}

// onUserWith loads, decides and appends a user change, keeping the inline
// credentials row in step with the new state in the same transaction.
func (h *Handler) onUserWith(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID,
	decide func(*domain.User) ([]domain.Event, error), extra func(context.Context, pgx.Tx) error) (Result, error) {
	if err := h.tenantAcceptsCommands(ctx, tenant); err != nil {
		return Result{}, err
	}
	return h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		u, err := h.LoadUser(ctx, tenant, id)
		if err != nil {
			return change{}, err
		}
		if !u.Exists() {
			return change{}, domain.ErrNotFound
		}
		events, err := decide(u)
		if err != nil {
			return change{}, err
		}
		next := *u
		for _, e := range events {
			next.Apply(e, h.now())
		}
		losesAdmin := u.Status == domain.UserActive && u.HasRole(string(auth.RoleTenantAdmin)) &&
			(next.Status != domain.UserActive || !next.HasRole(string(auth.RoleTenantAdmin)))
		return change{tenant: tenant, stream: userStream(id), version: u.Version, events: events, lockTenant: losesAdmin,
			side: func(ctx context.Context, tx pgx.Tx) error {
				if losesAdmin {
					if err := keepsAnAdmin(ctx, tx, tenant, id); err != nil {
						return err
					}
				}
				if _, err := tx.Exec(ctx, `UPDATE user_credentials SET roles = $2, status = $3, updated_at = now() WHERE user_id = $1`,
					id, next.Roles, next.Status); err != nil {
					return err
				}
				if next.Status == domain.UserDisabled && u.Status != domain.UserDisabled {
					if _, err := tx.Exec(ctx, `UPDATE sessions SET ended_at = now(), end_reason = 'user_disabled'
						WHERE user_id = $1 AND ended_at IS NULL`, id); err != nil {
						return err
					}
				}
				if extra != nil {
					return extra(ctx, tx)
				}
				return nil
			}}, nil
	})
}

// keepsAnAdmin fails when no other active tenant_admin would remain. The
// caller holds the tenant's advisory lock, so two admins cannot demote each
// other at once.
func keepsAnAdmin(ctx context.Context, tx pgx.Tx, tenant, losing uuid.UUID) error {
	if tenant == domain.PlatformTenant {
		return nil
	}
	var others int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM user_credentials
		WHERE tenant_id = $1 AND user_id <> $2 AND status = 'active' AND $3 = ANY(roles)`,
		tenant, losing, string(auth.RoleTenantAdmin)).Scan(&others)
	if err != nil {
		return err
	}
	if others == 0 {
		return domain.ErrLastAdmin
	}
	return nil
}

func (h *Handler) verifyPassword(ctx context.Context, tenant, id uuid.UUID, password string) (bool, error) {
	var hash string
	err := h.inTenant(ctx, tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT password_hash FROM user_credentials WHERE user_id = $1`, id).Scan(&hash)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, domain.ErrNotFound
	}
	if err != nil {
		return false, err
	}
	return h.passwords.Verify(password, hash)
}

func containsRole(roles []string, role string) bool {
	for _, r := range roles {
		if r == role {
			return true
		}
	}
	return false
}
