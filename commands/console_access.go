package commands

import (
	"context"

	"github.com/accountdb/accountdb/auth"
	"github.com/google/uuid"
)

// ConsoleAccess is what an open console's holder may do now.
type ConsoleAccess struct {
	// Open: the credential the console was opened with (a session or an
	// API token) is still good; Permissions are then what it allows now.
	Open        bool
	Permissions []auth.Permission
	// TokenID is set when the credential is an API token.
	TokenID uuid.UUID
}

// ConsoleAccess re-checks the credential id a console was opened with: an
// open session of user (its user's permissions now, none while it is open
// for enrolment only), or else a live API token of user (its permissions
// that the user still holds, none once the tenant is suspended). A console
// opened with a token ends when the token is revoked, expires or shrinks.
func (h *Handler) ConsoleAccess(ctx context.Context, tenant, user, id uuid.UUID) (ConsoleAccess, error) {
	if h.tables == nil {
		return ConsoleAccess{}, ErrNoTables
	}
	roles, enrolmentOnly, open, err := h.tables.Sessions().SessionState(ctx, tenant, user, id)
	if err != nil {
		return ConsoleAccess{}, err
	}
	if open {
		if enrolmentOnly {
			return ConsoleAccess{Open: true, Permissions: []auth.Permission{}}, nil
		}
		return ConsoleAccess{Open: true, Permissions: auth.PermissionsOf(roles)}, nil
	}
	perms, _, live, err := h.liveTokenPermissions(ctx, tenant, user, id)
	if err != nil || !live {
		return ConsoleAccess{}, err
	}
	return ConsoleAccess{Open: true, Permissions: perms, TokenID: id}, nil
}
