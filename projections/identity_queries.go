package projections

import (
	"context"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PageKey is where a keyset-paginated list continues: after this row in
// (created_at, id) order. Clients see it only as an opaque cursor.
type PageKey struct {
	CreatedAt time.Time `json:"c"`
	ID        uuid.UUID `json:"i"`
}

// Page bounds one list read.
type Page struct {
	After *PageKey
	Limit int
}

func (p Page) args() (time.Time, uuid.UUID, int) {
	if p.After == nil {
		return time.Time{}, uuid.Nil, p.Limit + 1
	}
	return p.After.CreatedAt, p.After.ID, p.Limit + 1
}

// nextKey trims a read of limit+1 rows to limit and says where the next page starts.
func nextKey[T any](rows []T, limit int, key func(T) PageKey) ([]T, *PageKey) {
	if len(rows) <= limit {
		return rows, nil
	}
	rows = rows[:limit]
	k := key(rows[limit-1])
	return rows, &k
}

// TenantView is a row of the tenants read model.
type TenantView struct {
	ID        uuid.UUID
	Name      string
	Status    string
	Quota     domain.Quota
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

const tenantColumns = `tenant_id, name, status, max_vms, max_cores, max_memory_mb, max_disk_gb, max_snapshots_per_vm, max_backups_gb,
	max_ipv4, version, created_at, updated_at`

func scanTenant(row pgx.CollectableRow) (TenantView, error) {
	var t TenantView
	err := row.Scan(&t.ID, &t.Name, &t.Status, &t.Quota.MaxVMs, &t.Quota.MaxCores, &t.Quota.MaxMemoryMB, &t.Quota.MaxDiskGB,
		&t.Quota.MaxSnapshotsPerVM, &t.Quota.MaxBackupsGB, &t.Quota.MaxIPv4, &t.Version, &t.CreatedAt, &t.UpdatedAt)
	return t, err
}

// ListTenants lists the tenants visible under scope (every tenant for a
// platform administrator's scope), oldest first.
func ListTenants(ctx context.Context, pool *pgxpool.Pool, scope tenantdb.Scope, page Page) ([]TenantView, *PageKey, error) {
	after, id, limit := page.args()
	return queryPage(ctx, pool, scope, page, scanTenant, func(t TenantView) PageKey { return PageKey{t.CreatedAt, t.ID} },
		`SELECT `+tenantColumns+` FROM tenants
		WHERE (created_at, tenant_id) > ($1, $2) ORDER BY created_at, tenant_id LIMIT $3`, after, id, limit)
}

// GetTenant reads one tenant; domain.ErrNotFound if scope cannot see it.
func GetTenant(ctx context.Context, pool *pgxpool.Pool, scope tenantdb.Scope, id uuid.UUID) (TenantView, error) {
	return queryOne(ctx, pool, scope, scanTenant, `SELECT `+tenantColumns+` FROM tenants WHERE tenant_id = $1`, id)
}

// UserView is a row of the users read model.
type UserView struct {
	ID          uuid.UUID
	TenantID    uuid.UUID
	Email       string
	DisplayName string
	Roles       []string
	Status      string
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

const userColumns = `user_id, tenant_id, email, display_name, roles, status, version, created_at, updated_at`

func scanUser(row pgx.CollectableRow) (UserView, error) {
	var u UserView
	err := row.Scan(&u.ID, &u.TenantID, &u.Email, &u.DisplayName, &u.Roles, &u.Status, &u.Version, &u.CreatedAt, &u.UpdatedAt)
	return u, err
}

// UserFilter narrows ListUsers; empty fields match everything.
type UserFilter struct {
	Status string
	Email  string
}

// ListUsers lists a tenant's users, oldest first.
func ListUsers(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID, f UserFilter, page Page) ([]UserView, *PageKey, error) {
	after, id, limit := page.args()
	return queryPage(ctx, pool, tenantdb.Tenant(tenant), page, scanUser, func(u UserView) PageKey { return PageKey{u.CreatedAt, u.ID} },
		`SELECT `+userColumns+` FROM users
		WHERE tenant_id = $1 AND (created_at, user_id) > ($2, $3)
		  AND ($5 = '' OR status = $5) AND ($6 = '' OR email = $6)
		ORDER BY created_at, user_id LIMIT $4`, tenant, after, id, limit, f.Status, f.Email)
}

// GetUser reads one user of a tenant; domain.ErrNotFound otherwise.
func GetUser(ctx context.Context, pool *pgxpool.Pool, tenant, id uuid.UUID) (UserView, error) {
	return queryOne(ctx, pool, tenantdb.Tenant(tenant), scanUser,
		`SELECT `+userColumns+` FROM users WHERE tenant_id = $1 AND user_id = $2`, tenant, id)
}

// SessionView is one of a user's sessions.
type SessionView struct {
	ID         uuid.UUID
	CreatedAt  time.Time
	LastSeenAt time.Time
	EndedAt    *time.Time
	IP         string
	UserAgent  string
}

// ListSessions lists a user's open sessions, newest first.
func ListSessions(ctx context.Context, pool *pgxpool.Pool, tenant, user uuid.UUID) ([]SessionView, error) {
	return queryRows(ctx, pool, tenantdb.Tenant(tenant), func(row pgx.CollectableRow) (SessionView, error) {
		var s SessionView
		err := row.Scan(&s.ID, &s.CreatedAt, &s.LastSeenAt, &s.EndedAt, &s.IP, &s.UserAgent)
		return s, err
	}, `SELECT session_id, created_at, last_seen_at, ended_at, ip, user_agent FROM sessions
		WHERE tenant_id = $1 AND user_id = $2 AND ended_at IS NULL AND expires_at > now()
		ORDER BY created_at DESC LIMIT 200`, tenant, user)
}
