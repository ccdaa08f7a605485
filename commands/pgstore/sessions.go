package pgstore

import (
	"context"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// sessions reads the sessions and refresh_tokens tables.
type sessions struct{ pool *pgxpool.Pool }

func (s sessions) RefreshToken(ctx context.Context, hash []byte) (commands.RefreshToken, bool, error) {
	var rt commands.RefreshToken
	// Before the tenant is known: through the SECURITY DEFINER function.
	found, err := lookup(ctx, s.pool, `SELECT tenant_id, session_id, used, user_id, ended, expires_at FROM refresh_token_lookup($1)`,
		[]any{hash}, &rt.Tenant, &rt.Session, &rt.Used, &rt.User, &rt.Ended, &rt.ExpiresAt)
	return rt, found, err
}

func (s sessions) Session(ctx context.Context, tenant, id uuid.UUID) (user uuid.UUID, ended, found bool, err error) {
	found, err = queryRow(ctx, s.pool, tenantScope(tenant),
		`SELECT user_id, ended_at IS NOT NULL FROM sessions WHERE session_id = $1`, []any{id}, &user, &ended)
	return user, ended, found, err
}

func (s sessions) OpenSessionRoles(ctx context.Context, tenant, user, id uuid.UUID) ([]string, bool, error) {
	var roles []string
	found, err := queryRow(ctx, s.pool, tenantScope(tenant), `SELECT c.roles FROM sessions s
			JOIN user_credentials c ON c.tenant_id = s.tenant_id AND c.user_id = s.user_id
			WHERE s.session_id = $1 AND s.user_id = $2 AND s.ended_at IS NULL AND s.expires_at > now() AND c.status = $3
			AND NOT s.enrolment_only`,
		[]any{id, user, string(domain.UserActive)}, &roles)
	return roles, found, err
}

func (s sessions) SessionState(ctx context.Context, tenant, user, id uuid.UUID) (roles []string, enrolmentOnly, open bool, err error) {
	open, err = queryRow(ctx, s.pool, tenantScope(tenant), `SELECT c.roles, s.enrolment_only FROM sessions s
			JOIN user_credentials c ON c.tenant_id = s.tenant_id AND c.user_id = s.user_id
			WHERE s.session_id = $1 AND s.user_id = $2 AND s.ended_at IS NULL AND s.expires_at > now() AND c.status = $3`,
		[]any{id, user, string(domain.UserActive)}, &roles, &enrolmentOnly)
	return roles, enrolmentOnly, open, err
}

// sessionWriter writes sessions and refresh tokens inside AppendWith.
type sessionWriter txTables

func (w sessionWriter) Open(ctx context.Context, s commands.NewSession) error {
	if _, err := w.tx.Exec(ctx, `INSERT INTO sessions (tenant_id, session_id, user_id, expires_at, ip, user_agent, enrolment_only)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, s.Tenant, s.ID, s.User, s.ExpiresAt, s.ClientIP, s.UserAgent, s.EnrolmentOnly); err != nil {
		return err
	}
	_, err := w.tx.Exec(ctx, `INSERT INTO refresh_tokens (tenant_id, token_hash, session_id) VALUES ($1, $2, $3)`,
		s.Tenant, s.RefreshHash, s.ID)
	return err
}

func (w sessionWriter) Rotate(ctx context.Context, tenant, session uuid.UUID, used, next []byte, clientIP, userAgent string) (bool, error) {
	tag, err := w.tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1 AND used_at IS NULL`, used)
	if err != nil || tag.RowsAffected() != 1 {
		return false, err
	}
	if _, err := w.tx.Exec(ctx, `INSERT INTO refresh_tokens (tenant_id, token_hash, session_id) VALUES ($1, $2, $3)`,
		tenant, next, session); err != nil {
		return false, err
	}
	_, err = w.tx.Exec(ctx, `UPDATE sessions SET last_seen_at = now(), ip = $2, user_agent = $3 WHERE session_id = $1`,
		session, clientIP, userAgent)
	return err == nil, err
}

func (w sessionWriter) End(ctx context.Context, id uuid.UUID, reason string) error {
	_, err := w.tx.Exec(ctx, `UPDATE sessions SET ended_at = now(), end_reason = $2 WHERE session_id = $1 AND ended_at IS NULL`, id, reason)
	return err
}

func (w sessionWriter) EndAllOf(ctx context.Context, user, except uuid.UUID, reason string) error {
	_, err := w.tx.Exec(ctx, `UPDATE sessions SET ended_at = now(), end_reason = $2
		WHERE user_id = $1 AND session_id <> $3 AND ended_at IS NULL`, user, reason, except)
	return err
}

func (w sessionWriter) EndAllOfTenant(ctx context.Context, tenant uuid.UUID, reason string) error {
	_, err := w.tx.Exec(ctx, `UPDATE sessions SET ended_at = now(), end_reason = $2 WHERE tenant_id = $1 AND ended_at IS NULL`, tenant, reason)
	return err
}
