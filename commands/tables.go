package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
)

// The side tables, as commands reads and writes them. Readers run in
// transactions of their own; writers only inside Tables.AppendWith.

// NewSession is a session to open, with its first refresh token.
type NewSession struct {
	Tenant, ID, User uuid.UUID
	ExpiresAt        time.Time
	ClientIP         string
	UserAgent        string
	RefreshHash      []byte
	// EnrolmentOnly: the user must enrol in two-factor before anything
	// else (their tenant requires it).
	EnrolmentOnly bool
}

// RefreshToken is a refresh token with the state of its session.
type RefreshToken struct {
	Tenant, Session, User uuid.UUID
	Used, Ended           bool
	ExpiresAt             time.Time
}

// SessionStore reads sessions and refresh tokens.
type SessionStore interface {
	// RefreshToken finds a token by its hash, before the tenant is known.
	RefreshToken(ctx context.Context, hash []byte) (RefreshToken, bool, error)
	// Session is tenant's session id: its user and whether it has ended.
	Session(ctx context.Context, tenant, id uuid.UUID) (user uuid.UUID, ended, found bool, err error)
	// OpenSessionRoles is the roles of user if session id is theirs, has
	// neither ended nor expired, and the user is active; false otherwise.
	// Enrolment-only sessions are not open for it.
	OpenSessionRoles(ctx context.Context, tenant, user, id uuid.UUID) ([]string, bool, error)
	// SessionState is OpenSessionRoles, with enrolment-only sessions open
	// and said to be.
	SessionState(ctx context.Context, tenant, user, id uuid.UUID) (roles []string, enrolmentOnly, open bool, err error)
}

// SessionWriter writes sessions and refresh tokens.
type SessionWriter interface {
	Open(ctx context.Context, s NewSession) error
	// Rotate marks the refresh token used as used, records next for the
	// session and where it was refreshed from; false, with nothing
	// written, when used had been used already.
	Rotate(ctx context.Context, tenant, session uuid.UUID, used, next []byte, clientIP, userAgent string) (bool, error)
	// End ends session id unless it has ended already.
	End(ctx context.Context, id uuid.UUID, reason string) error
	// EndAllOf ends every open session of user but except (uuid.Nil:
	// every one).
	EndAllOf(ctx context.Context, user, except uuid.UUID, reason string) error
	// EndAllOfTenant ends every open session of tenant's users.
	EndAllOfTenant(ctx context.Context, tenant uuid.UUID, reason string) error
}

// Credential is what signing in checks: a user's email, password hash,
// roles and status, kept beside the user's stream (the hash never reaches
// an event).
type Credential struct {
	Tenant, User uuid.UUID
	Email        string
	PasswordHash string
	Roles        []string
	Status       domain.UserStatus
}

// ErrEmailTaken: another user has the email (emails are unique across the
// platform).
var ErrEmailTaken = fmt.Errorf("%w: email already in use", domain.ErrConflict)

// CredentialStore reads credentials.
type CredentialStore interface {
	// ByEmail finds a credential by email, before the tenant is known.
	ByEmail(ctx context.Context, email string) (Credential, bool, error)
	// Of is the credential of tenant's user.
	Of(ctx context.Context, tenant, user uuid.UUID) (Credential, bool, error)
}

// CredentialWriter writes credentials.
type CredentialWriter interface {
	// Create records c; ErrEmailTaken when its email is another user's.
	Create(ctx context.Context, c Credential) error
	Update(ctx context.Context, user uuid.UUID, roles []string, status domain.UserStatus) error
	SetPassword(ctx context.Context, user uuid.UUID, hash string) error
	// CountActiveWithRole counts tenant's active users other than except
	// that hold role.
	CountActiveWithRole(ctx context.Context, tenant, except uuid.UUID, role string) (int, error)
}

// UsageWriter keeps a tenant's allocation, as the quota counts it.
type UsageWriter interface {
	// Add adds d to tenant's usage unless a growth in d would take it past
	// q; false then, and nothing changed. Concurrent adds of one tenant
	// are serialised.
	Add(ctx context.Context, tenant uuid.UUID, d Usage, q domain.Quota) (bool, error)
	// CurrentAt is tenant's usage (zero when nothing was ever counted) and
	// the version of the tenant's own stream (0: none), read together.
	CurrentAt(ctx context.Context, tenant uuid.UUID) (Usage, int64, error)
}

// InventoryStore is the agent's latest view of each cluster.
type InventoryStore interface {
	// ClusterOffering is the cluster most recently seen offering a
	// template of the name and kind (only cluster, when set); false when
	// none does.
	ClusterOffering(ctx context.Context, tenant uuid.UUID, template, kind string, cluster uuid.UUID) (uuid.UUID, bool, error)
	// IsOSTemplate reports whether cluster offers template as a container
	// OS template (created from, not cloned).
	IsOSTemplate(ctx context.Context, tenant uuid.UUID, template string, cluster uuid.UUID) (bool, error)
	// Record keeps inv unless a later view of its cluster is kept already.
	Record(ctx context.Context, inv protocol.Inventory) error
}

// IndexedVM is a VM as the vms read model shows it.
type IndexedVM struct {
	ID, Tenant     uuid.UUID
	Status         domain.VMStatus
	PendingChanges bool // cloud-init settings its guest has not booted with
}

// VMIndex is the vms read model, across tenants: it only picks which VMs a
// command looks at; each decision is made on the VM's own stream.
type VMIndex interface {
	// Settled lists the VMs placed on cluster that are running or stopped
	// with no action pending.
	Settled(ctx context.Context, cluster uuid.UUID) ([]IndexedVM, error)
	// Overdue lists up to limit VMs whose pending action is older than age.
	Overdue(ctx context.Context, age time.Duration, limit int) ([]IndexedVM, error)
}

// UnseenGuests is reconciliation's memory of the guests a cluster's listing
// missed, so that a guest missing from one listing (a node slow to answer,
// a guest being migrated) is not taken for deleted, which releases its
// address and quota, until a later listing misses it too.
type UnseenGuests interface {
	// Missed records that cluster's listing at listedAt missed vms (only
	// them: any other VM the cluster had missed is forgotten) and returns
	// those of vms that a listing before listedAt missed already.
	Missed(ctx context.Context, cluster uuid.UUID, listedAt time.Time, vms []uuid.UUID) ([]uuid.UUID, error)
}
