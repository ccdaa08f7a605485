package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
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
	if err := knownRoles(nu.Roles); err != nil {
		return Result{}, err
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
			side: func(ctx context.Context, tx TxTables) error {
				return tx.Credentials().Create(ctx, Credential{Tenant: nu.TenantID, User: id, Email: created.Email,
					PasswordHash: hash, Roles: created.Roles, Status: domain.UserActive})
			}}, nil
	})
}

// ChangeUserRoles replaces a user's roles. The actor must hold every
// permission of the roles it grants, and the tenant must keep an admin.
func (h *Handler) ChangeUserRoles(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, roles []string) (Result, error) {
	if err := knownRoles(roles); err != nil {
		return Result{}, err
	}
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

// ChangePassword sets a new password and ends the user's other sessions. A
// user changing their own must give the current one (a wrong one counts
// against the sign-in throttle, see checkCurrentPassword), and keeps the
// session they changed it from; an administrator resetting someone else's
// need not, and ends every session of theirs.
func (h *Handler) ChangePassword(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, current, next string) (Result, error) {
	if err := auth.ValidatePassword(next); err != nil {
		return Result{}, &domain.ValidationError{Fields: map[string]string{"password": err.Error()}}
	}
	// A repeat of a change that succeeded gets its first answer, before the
	// current password (no longer current) is checked.
	if res, found, err := h.replayed(ctx, a, o); err != nil || found {
		return res, err
	}
	kept := uuid.Nil
	if id == a.UserID {
		kept = a.SessionID
		if err := h.checkCurrentPassword(ctx, a, tenant, current); err != nil {
			return Result{}, err
		}
	}
	hash, err := h.passwords.Hash(next)
	if err != nil {
		return Result{}, err
	}
	decide := func(u *domain.User) ([]domain.Event, error) { return u.ChangePassword(kept) }
	return h.onUserWith(ctx, a, o, tenant, id, decide, func(ctx context.Context, tx TxTables) error {
		if err := tx.Credentials().SetPassword(ctx, id, hash); err != nil {
			return err
		}
		return tx.Sessions().EndAllOf(ctx, id, kept, "password_changed")
	})
}

func (h *Handler) onUser(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, decide func(*domain.User) ([]domain.Event, error)) (Result, error) {
	return h.onUserWith(ctx, a, o, tenant, id, decide, nil)
}

// onUserWith loads, decides and appends a user change, keeping the inline
// credentials row in step with the new state in the same transaction.
func (h *Handler) onUserWith(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID,
	decide func(*domain.User) ([]domain.Event, error), extra func(context.Context, TxTables) error) (Result, error) {
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
		// Nobody changes the password, roles or status of a user who can
		// do more than they can: a tenant_admin of the platform tenant
		// could otherwise reset a platform_admin's password and sign in
		// as them.
		if id != a.UserID && !auth.HoldsAllOf(a.Roles, u.Roles) {
			return change{}, domain.ErrOutranked
		}
		events, err := decide(u)
		if err != nil {
			return change{}, err
		}
		next := *u
		for _, e := range events {
			next.Apply(e, h.now())
		}
		admin := adminRole(tenant)
		losesAdmin := u.Status == domain.UserActive && u.HasRole(admin) &&
			(next.Status != domain.UserActive || !next.HasRole(admin))
		return change{tenant: tenant, stream: userStream(id), version: u.Version, events: events, lockTenant: losesAdmin,
			side: func(ctx context.Context, tx TxTables) error {
				if losesAdmin {
					if err := keepsAnAdmin(ctx, tx, tenant, id, admin); err != nil {
						return err
					}
				}
				if err := tx.Credentials().Update(ctx, id, next.Roles, next.Status); err != nil {
					return err
				}
				if next.Status == domain.UserDisabled && u.Status != domain.UserDisabled {
					if err := tx.Sessions().EndAllOf(ctx, id, uuid.Nil, "user_disabled"); err != nil {
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

// adminRole is the role a tenant must keep one active holder of: the
// platform tenant's is platform_admin, every other tenant's tenant_admin.
func adminRole(tenant uuid.UUID) string {
	if tenant == domain.PlatformTenant {
		return auth.RolePlatformAdmin
	}
	return auth.RoleTenantAdmin
}

// keepsAnAdmin fails when no other active holder of role would remain. The
// caller holds the tenant's advisory lock, so two admins cannot demote each
// other at once.
func keepsAnAdmin(ctx context.Context, tx TxTables, tenant, losing uuid.UUID, role string) error {
	others, err := tx.Credentials().CountActiveWithRole(ctx, tenant, losing, role)
	if err != nil {
		return err
	}
	if others == 0 {
		return domain.ErrLastAdmin
	}
	return nil
}

// knownRoles refuses role names that do not exist as a validation error
// naming roles: asking for a role nobody has is a malformed request, not a
// lack of rights, so it is checked before what the actor may grant.
func knownRoles(roles []string) error {
	for _, r := range roles {
		if !auth.ValidRole(r) {
			return &domain.ValidationError{Fields: map[string]string{"roles": fmt.Sprintf("unknown role %.40q", r)}}
		}
	}
	return nil
}

func containsRole(roles []string, role string) bool {
	for _, r := range roles {
		if r == role {
			return true
		}
	}
	return false
}
