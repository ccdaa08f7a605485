package pgstore

import (
	"context"
	"errors"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// credentials reads the user_credentials table.
type credentials struct{ pool *pgxpool.Pool }

func (c credentials) ByEmail(ctx context.Context, email string) (commands.Credential, bool, error) {
	cred := commands.Credential{Email: email}
	var status string
	// Before the tenant is known: through the one SECURITY DEFINER function
	// (migrations/00012) that finds a credential by its exact email.
	found, err := lookup(ctx, c.pool, `SELECT tenant_id, user_id, password_hash, roles, status FROM credential_by_email($1)`,
		[]any{email}, &cred.Tenant, &cred.User, &cred.PasswordHash, &cred.Roles, &status)
	cred.Status = domain.UserStatus(status)
	if !found {
		return commands.Credential{}, found, err
	}
	return cred, found, err
}

func (c credentials) Of(ctx context.Context, tenant, user uuid.UUID) (commands.Credential, bool, error) {
	cred := commands.Credential{Tenant: tenant, User: user}
	var status string
	found, err := queryRow(ctx, c.pool, tenantScope(tenant),
		`SELECT email, password_hash, roles, status FROM user_credentials WHERE user_id = $1`, []any{user},
		&cred.Email, &cred.PasswordHash, &cred.Roles, &status)
	cred.Status = domain.UserStatus(status)
	if !found {
		return commands.Credential{}, found, err
	}
	return cred, found, err
}

// credentialWriter writes user_credentials inside AppendWith.
type credentialWriter txTables

func (w credentialWriter) Create(ctx context.Context, c commands.Credential) error {
	_, err := w.tx.Exec(ctx, `INSERT INTO user_credentials (tenant_id, user_id, email, password_hash, roles, status)
		VALUES ($1, $2, $3, $4, $5, $6)`, c.Tenant, c.User, c.Email, c.PasswordHash, c.Roles, string(c.Status))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.ConstraintName == "user_credentials_email_key" {
		return commands.ErrEmailTaken
	}
	return err
}

func (w credentialWriter) Update(ctx context.Context, user uuid.UUID, roles []string, status domain.UserStatus) error {
	_, err := w.tx.Exec(ctx, `UPDATE user_credentials SET roles = $2, status = $3, updated_at = now() WHERE user_id = $1`,
		user, roles, string(status))
	return err
}

func (w credentialWriter) SetPassword(ctx context.Context, user uuid.UUID, hash string) error {
	_, err := w.tx.Exec(ctx, `UPDATE user_credentials SET password_hash = $2, updated_at = now() WHERE user_id = $1`, user, hash)
	return err
}

func (w credentialWriter) CountActiveWithRole(ctx context.Context, tenant, except uuid.UUID, role string) (int, error) {
	var n int
	err := w.tx.QueryRow(ctx, `SELECT count(*) FROM user_credentials
		WHERE tenant_id = $1 AND user_id <> $2 AND status = $3 AND $4 = ANY(roles)`,
		tenant, except, string(domain.UserActive), role).Scan(&n)
	return n, err
}
