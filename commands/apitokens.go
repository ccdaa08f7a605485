package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
)

// ErrTokenSecretShownOnce: an Idempotency-Key repeated a token creation. The
// first answer carried the secret, which is not kept, so the repeat cannot
// answer it again. HTTP 409.
var ErrTokenSecretShownOnce = fmt.Errorf("%w: the token was created by the first request with this Idempotency-Key; its secret was shown only then", domain.ErrConflict)

func apiTokenStream(id uuid.UUID) eventlog.StreamID {
	return eventlog.StreamID{Type: domain.StreamAPIToken, ID: id}
}

// CreatedAPIToken is a new token, with its secret (answered once).
type CreatedAPIToken struct {
	Result
	Token       string
	Name        string
	Permissions []string
	ExpiresAt   time.Time
}

// CreateAPIToken creates a token for the acting user with perms, each of
// which the user must hold now (else domain.ErrForbidden).
func (h *Handler) CreateAPIToken(ctx context.Context, a Actor, o Options, name string, perms []string, expiresAt *time.Time) (CreatedAPIToken, error) {
	if err := h.tenantAcceptsCommands(ctx, a.TenantID); err != nil {
		return CreatedAPIToken{}, err
	}
	held := permStrings(auth.PermissionsOf(a.Roles))
	token, hash, prefix := auth.NewAPIToken()
	tok, events, err := domain.CreateAPIToken(a.UserID, name, prefix, perms, expiresAt, h.now(),
		func(p string) bool { return auth.ValidPermission(auth.Permission(p)) }, held)
	if err != nil {
		return CreatedAPIToken{}, err
	}
	id := uuid.Must(uuid.NewV7())
	res, err := h.execute(ctx, a, o, func(context.Context) (change, error) {
		return change{tenant: a.TenantID, stream: apiTokenStream(id), events: events,
			side: func(ctx context.Context, tx TxTables) error {
				n, err := tx.APITokens().CountKept(ctx, a.UserID)
				if err != nil {
					return err
				}
				if n >= domain.MaxAPITokensPerUser {
					return fmt.Errorf("%w: a user may keep at most %d API tokens (revoke expired ones to make room)", domain.ErrQuotaExceeded, domain.MaxAPITokensPerUser)
				}
				return tx.APITokens().Create(ctx, APITokenRow{Tenant: a.TenantID, ID: id, User: a.UserID, Name: tok.Name,
					Prefix: prefix, Permissions: tok.Permissions, ExpiresAt: tok.ExpiresAt}, hash)
			}}, nil
	})
	if err != nil {
		return CreatedAPIToken{}, err
	}
	if res.Replayed {
		return CreatedAPIToken{}, ErrTokenSecretShownOnce
	}
	return CreatedAPIToken{Result: res, Token: token, Name: tok.Name, Permissions: tok.Permissions, ExpiresAt: tok.ExpiresAt}, nil
}

// RevokeAPIToken revokes one of the acting user's own tokens.
func (h *Handler) RevokeAPIToken(ctx context.Context, a Actor, o Options, id uuid.UUID) (Result, error) {
	return h.revokeAPIToken(ctx, a, o, a.TenantID, a.UserID, id, "revoked")
}

// RevokeUserAPIToken revokes a token of tenant's user (the route requires
// user:manage; tenant is the administrator's, or any for a platform
// administrator).
func (h *Handler) RevokeUserAPIToken(ctx context.Context, a Actor, o Options, tenant, user, id uuid.UUID) (Result, error) {
	reason := "revoked_by_admin"
	if user == a.UserID {
		reason = "revoked"
	}
	return h.revokeAPIToken(ctx, a, o, tenant, user, id, reason)
}

func (h *Handler) revokeAPIToken(ctx context.Context, a Actor, o Options, tenant, user, id uuid.UUID, reason string) (Result, error) {
	return h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		t := &domain.APIToken{ID: id}
		if _, err := h.loadInto(ctx, tenant, apiTokenStream(id), t); err != nil {
			return change{}, err
		}
		if !t.Exists() || t.UserID != user {
			return change{}, domain.ErrNotFound
		}
		events, err := t.Revoke(reason)
		if err != nil {
			return change{}, err
		}
		return change{tenant: tenant, stream: apiTokenStream(id), version: t.Version, events: events,
			side: func(ctx context.Context, tx TxTables) error { return tx.APITokens().Revoke(ctx, id) }}, nil
	})
}

// ListAPITokens lists user's live tokens in tenant; pending last-used times
// are written first, so the list shows the latest use this process saw.
func (h *Handler) ListAPITokens(ctx context.Context, tenant, user uuid.UUID) ([]APITokenRow, error) {
	if h.tables == nil {
		return nil, ErrNoTables
	}
	if err := h.FlushAPITokenUsage(ctx); err != nil {
		h.log.Warn("writing API token uses", "error", err)
	}
	return h.tables.APITokens().List(ctx, tenant, user)
}

// TokenAccess is what a request authenticated by an API token may do.
type TokenAccess struct {
	Tenant, User, TokenID uuid.UUID
	// Roles are the user's roles wholly within Permissions (see
	// auth.RolesWithin); Permissions the token's that the user still holds.
	Roles       []string
	Permissions []auth.Permission
}

// ErrTokenTenantSuspended: the token's tenant is suspended; the API says so
// rather than a bare 401, as for a session.
var ErrTokenTenantSuspended = errors.New("the token's tenant is suspended")

// APITokenAccess authenticates an API token: well formed (prefix and
// checksum, checked before any look-up), known, neither revoked nor
// expired, of an active user in a tenant that is not suspended. Anything
// else is ErrUnauthenticated. Its first accepted use is recorded as an
// event; every use is noted for the batched last-used write.
func (h *Handler) APITokenAccess(ctx context.Context, meta eventlog.Metadata, token string) (TokenAccess, error) {
	hash, err := auth.ParseAPIToken(token)
	if err != nil {
		return TokenAccess{}, ErrUnauthenticated
	}
	if h.tables == nil {
		return TokenAccess{}, ErrNoTables
	}
	t, found, err := h.tables.APITokens().Lookup(ctx, hash)
	switch {
	case err != nil:
		return TokenAccess{}, err
	case !found || t.Revoked || !h.now().Before(t.ExpiresAt) || t.Status != domain.UserActive:
		return TokenAccess{}, ErrUnauthenticated
	}
	if t.Tenant != domain.PlatformTenant {
		tenant, err := h.LoadTenant(ctx, t.Tenant)
		if err != nil {
			return TokenAccess{}, err
		}
		if tenant.Status == domain.TenantSuspended {
			return TokenAccess{}, ErrTokenTenantSuspended
		}
	}
	if !t.FirstUsed {
		if err := h.recordFirstUse(ctx, meta, t); err != nil {
			return TokenAccess{}, err
		}
	}
	h.usage.note(t.Tenant, APITokenUse{ID: t.ID, At: h.now(), IP: meta.ClientIP})
	perms := auth.Intersect(toPerms(t.Permissions), auth.PermissionsOf(t.Roles))
	return TokenAccess{Tenant: t.Tenant, User: t.User, TokenID: t.ID, Roles: auth.RolesWithin(t.Roles, perms), Permissions: perms}, nil
}

// StreamRoles is the event feed's re-check at each heartbeat (feed.Sessions):
// the roles of an open session, or else of a live API token of that id
// (auth.RolesWithin its permissions now), so a stream opened with a token
// ends when the token is revoked, its tenant suspended or its user loses
// the permissions.
func (h *Handler) StreamRoles(ctx context.Context, tenant, user, id uuid.UUID) ([]string, bool, error) {
	roles, open, err := h.SessionRoles(ctx, tenant, user, id)
	if err != nil || open {
		return roles, open, err
	}
	eff, userRoles, ok, err := h.liveTokenPermissions(ctx, tenant, user, id)
	if err != nil || !ok {
		return nil, false, err
	}
	return auth.RolesWithin(userRoles, eff), true, nil
}

// liveTokenPermissions is what tenant's API token id of user allows now: its
// permissions that the user still holds, while the token is neither revoked
// nor expired, the user active and the tenant not suspended (a token, unlike
// a session, is not ended by a suspension, so this checks it).
func (h *Handler) liveTokenPermissions(ctx context.Context, tenant, user, id uuid.UUID) (eff []auth.Permission, userRoles []string, ok bool, err error) {
	perms, userRoles, live, err := h.tables.APITokens().Live(ctx, tenant, user, id)
	if err != nil || !live {
		return nil, nil, false, err
	}
	if tenant != domain.PlatformTenant {
		t, err := h.LoadTenant(ctx, tenant)
		if err != nil {
			return nil, nil, false, err
		}
		if t.Status == domain.TenantSuspended {
			return nil, nil, false, nil
		}
	}
	return auth.Intersect(toPerms(perms), auth.PermissionsOf(userRoles)), userRoles, true, nil
}

var errFirstUseRecorded = errors.New("first use recorded already")

// recordFirstUse appends api_token_first_used exactly once: the row's
// first_used_at is set in the same transaction, and a request that finds it
// set already rolls its event back.
func (h *Handler) recordFirstUse(ctx context.Context, meta eventlog.Metadata, t APITokenAuth) error {
	a := Actor{UserID: t.User, TenantID: t.Tenant, CorrelationID: uuid.Must(uuid.NewV7()), Metadata: meta}
	a.Metadata.APITokenID = t.ID.String()
	_, err := h.commit(ctx, a, Options{}, change{tenant: t.Tenant, stream: apiTokenStream(t.ID), anyVersion: true,
		events: []domain.Event{&domain.APITokenFirstUsed{UserID: t.User, ClientIP: meta.ClientIP}},
		side: func(ctx context.Context, tx TxTables) error {
			first, err := tx.APITokens().MarkFirstUsed(ctx, t.ID)
			if err == nil && !first {
				return errFirstUseRecorded
			}
			return err
		}})
	if errors.Is(err, errFirstUseRecorded) {
		return nil
	}
	return err
}

func permStrings(ps []auth.Permission) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

func toPerms(ss []string) []auth.Permission {
	out := make([]auth.Permission, 0, len(ss))
	for _, s := range ss {
		out = append(out, auth.Permission(s))
	}
	slices.Sort(out)
	return out
}
