package pgstore

import (
	"context"
	"time"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// apiTokens reads the api_tokens table (migrations/00016).
type apiTokens struct{ pool *pgxpool.Pool }

func (s apiTokens) Lookup(ctx context.Context, hash []byte) (commands.APITokenAuth, bool, error) {
	var t commands.APITokenAuth
	var status string
	// Before the tenant is known: through the SECURITY DEFINER function.
	found, err := lookup(ctx, s.pool, `SELECT tenant_id, token_id, user_id, permissions, expires_at, revoked, first_used, roles, status
		FROM api_token_lookup($1)`, []any{hash},
		&t.Tenant, &t.ID, &t.User, &t.Permissions, &t.ExpiresAt, &t.Revoked, &t.FirstUsed, &t.Roles, &status)
	t.Status = domain.UserStatus(status)
	return t, found, err
}

func (s apiTokens) Live(ctx context.Context, tenant, user, id uuid.UUID) (perms, roles []string, ok bool, err error) {
	ok, err = queryRow(ctx, s.pool, tenantScope(tenant), `SELECT t.permissions, c.roles FROM api_tokens t
			JOIN user_credentials c ON c.tenant_id = t.tenant_id AND c.user_id = t.user_id
			WHERE t.token_id = $1 AND t.user_id = $2 AND t.revoked_at IS NULL AND t.expires_at > now() AND c.status = $3`,
		[]any{id, user, string(domain.UserActive)}, &perms, &roles)
	return perms, roles, ok, err
}

func (s apiTokens) List(ctx context.Context, tenant, user uuid.UUID) ([]commands.APITokenRow, error) {
	var out []commands.APITokenRow
	err := tenantdb.ReadTx(ctx, s.pool, tenantScope(tenant), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT token_id, name, prefix, permissions, created_at, expires_at, last_used_at, coalesce(last_used_ip, '')
			FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at, token_id`, user)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (commands.APITokenRow, error) {
			r := commands.APITokenRow{Tenant: tenant, User: user}
			err := row.Scan(&r.ID, &r.Name, &r.Prefix, &r.Permissions, &r.CreatedAt, &r.ExpiresAt, &r.LastUsedAt, &r.LastUsedIP)
			return r, err
		})
		return err
	})
	return out, err
}

func (s apiTokens) Touch(ctx context.Context, tenant uuid.UUID, uses []commands.APITokenUse) error {
	ids := make([]uuid.UUID, len(uses))
	ats := make([]time.Time, len(uses))
	ips := make([]string, len(uses))
	for i, u := range uses {
		ids[i], ats[i], ips[i] = u.ID, u.At, u.IP
	}
	return tenantdb.InTx(ctx, s.pool, tenantScope(tenant), func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE api_tokens t SET last_used_at = u.at, last_used_ip = u.ip
			FROM unnest($1::uuid[], $2::timestamptz[], $3::text[]) AS u(id, at, ip)
			WHERE t.token_id = u.id AND (t.last_used_at IS NULL OR t.last_used_at < u.at)`, ids, ats, ips)
		return err
	})
}

// apiTokenWriter writes api_tokens inside AppendWith.
type apiTokenWriter txTables

func (w apiTokenWriter) Create(ctx context.Context, r commands.APITokenRow, hash []byte) error {
	_, err := w.tx.Exec(ctx, `INSERT INTO api_tokens (tenant_id, token_id, user_id, name, prefix, token_hash, permissions, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, r.Tenant, r.ID, r.User, r.Name, r.Prefix, hash, r.Permissions, r.ExpiresAt)
	return err
}

func (w apiTokenWriter) CountKept(ctx context.Context, user uuid.UUID) (int, error) {
	var n int
	err := w.tx.QueryRow(ctx, `SELECT count(*) FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL`, user).Scan(&n)
	return n, err
}

func (w apiTokenWriter) Revoke(ctx context.Context, id uuid.UUID) error {
	_, err := w.tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE token_id = $1 AND revoked_at IS NULL`, id)
	return err
}

func (w apiTokenWriter) MarkFirstUsed(ctx context.Context, id uuid.UUID) (bool, error) {
	tag, err := w.tx.Exec(ctx, `UPDATE api_tokens SET first_used_at = now() WHERE token_id = $1 AND first_used_at IS NULL`, id)
	return tag.RowsAffected() == 1, err
}
