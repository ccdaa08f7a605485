package commands

import (
	"context"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
)

// APITokenRow is an API token as its table keeps it (without its hash).
type APITokenRow struct {
	Tenant, ID, User uuid.UUID
	Name, Prefix     string
	Permissions      []string
	CreatedAt        time.Time
	ExpiresAt        time.Time
	LastUsedAt       *time.Time
	LastUsedIP       string
}

// APITokenAuth is what authenticating a request by an API token reads, in
// one look-up by the token's hash: the token and its user now.
type APITokenAuth struct {
	Tenant, ID, User uuid.UUID
	Permissions      []string
	ExpiresAt        time.Time
	Revoked          bool
	FirstUsed        bool
	Roles            []string
	Status           domain.UserStatus
}

// APITokenUse is one token's latest use, for the batched last-used write.
type APITokenUse struct {
	ID uuid.UUID
	At time.Time
	IP string
}

// APITokenStore reads API tokens.
type APITokenStore interface {
	// Lookup finds a token by its hash, before the tenant is known.
	Lookup(ctx context.Context, hash []byte) (APITokenAuth, bool, error)
	// Live is the permissions of tenant's token id and its user's roles, if
	// the token is user's, neither revoked nor expired, and the user active.
	Live(ctx context.Context, tenant, user, id uuid.UUID) (perms, roles []string, ok bool, err error)
	// List is user's tokens that are not revoked, oldest first.
	List(ctx context.Context, tenant, user uuid.UUID) ([]APITokenRow, error)
	// Touch records tenant's tokens' latest uses in one statement; a use
	// older than the one recorded changes nothing.
	Touch(ctx context.Context, tenant uuid.UUID, uses []APITokenUse) error
}

// APITokenWriter writes API tokens inside AppendWith.
type APITokenWriter interface {
	Create(ctx context.Context, row APITokenRow, hash []byte) error
	// CountKept counts user's tokens not revoked (expired ones too, so
	// the list of a user's tokens stays bounded: revoke an expired one to
	// make room).
	CountKept(ctx context.Context, user uuid.UUID) (int, error)
	Revoke(ctx context.Context, id uuid.UUID) error
	// MarkFirstUsed records the first use; false when it was recorded
	// already (by a concurrent request or another replica).
	MarkFirstUsed(ctx context.Context, id uuid.UUID) (bool, error)
}
