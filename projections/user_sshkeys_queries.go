package projections

import (
	"context"
	"time"

	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SSHKeyView is a row of the user_ssh_keys read model.
type SSHKeyView struct {
	ID          uuid.UUID
	UserID      uuid.UUID
	Name        string
	Type        string
	Fingerprint string
	PublicKey   string
	CreatedAt   time.Time
}

// ListUserSSHKeys lists one user's SSH keys, oldest first, in the tenant's
// scope (row-level security keeps every other tenant's rows out).
func ListUserSSHKeys(ctx context.Context, pool *pgxpool.Pool, tenant, user uuid.UUID, page Page) ([]SSHKeyView, *PageKey, error) {
	after, id, limit := page.args()
	return queryPage(ctx, pool, tenantdb.Tenant(tenant), page, func(row pgx.CollectableRow) (SSHKeyView, error) {
		var k SSHKeyView
		err := row.Scan(&k.ID, &k.UserID, &k.Name, &k.Type, &k.Fingerprint, &k.PublicKey, &k.CreatedAt)
		return k, err
	}, func(k SSHKeyView) PageKey { return PageKey{CreatedAt: k.CreatedAt, ID: k.ID} },
		`SELECT key_id, user_id, name, type, fingerprint, public_key, created_at FROM user_ssh_keys
		WHERE tenant_id = $1 AND user_id = $2 AND (created_at, key_id) > ($3, $4)
		ORDER BY created_at, key_id LIMIT $5`, tenant, user, after, id, limit)
}
