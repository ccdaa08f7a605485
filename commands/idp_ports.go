package commands

import (
	"context"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
)

// IdentityProviderRow is a provider as identity_providers keeps it.
type IdentityProviderRow struct {
	ID           uuid.UUID
	Config       domain.IdentityProviderConfig
	SealedSecret string
	CreatedAt    time.Time
}

// OIDCLogin is a sign-in in flight between /start and /callback.
type OIDCLogin struct {
	StateHash      []byte
	Provider       uuid.UUID
	Nonce          string
	SealedVerifier string
	ExpiresAt      time.Time
}

// IdentityStore reads providers, sign-ins in flight and identity links.
type IdentityStore interface {
	Providers(ctx context.Context) ([]IdentityProviderRow, error)
	Provider(ctx context.Context, id uuid.UUID) (IdentityProviderRow, bool, error)
	// StartLogin records a sign-in in flight (no event: it is not a fact
	// until its callback).
	StartLogin(ctx context.Context, l OIDCLogin) error
	// TakeLogin marks the sign-in of that state hash used and answers it;
	// false when there is none, or it was used or has expired.
	TakeLogin(ctx context.Context, stateHash []byte) (OIDCLogin, bool, error)
	// Identity is the user a provider's subject is in tenant.
	Identity(ctx context.Context, tenant, provider uuid.UUID, subject string) (uuid.UUID, bool, error)
}

// IdentityWriter writes providers and identity links inside AppendWith.
type IdentityWriter interface {
	// SaveProvider inserts or replaces a provider (in the platform tenant);
	// an empty SealedSecret keeps the one stored.
	SaveProvider(ctx context.Context, row IdentityProviderRow) error
	DeleteProvider(ctx context.Context, id uuid.UUID) error
	Link(ctx context.Context, tenant, provider uuid.UUID, subject string, user uuid.UUID) error
}
