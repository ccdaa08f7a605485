package pgstore

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// identities reads identity_providers, oidc_logins and user_identities
// (migrations/00017). Providers and sign-ins in flight are platform rows.
type identities struct{ pool *pgxpool.Pool }

var platform = tenantdb.Tenant(domain.PlatformTenant)

const providerColumns = `provider_id, name, issuer, client_id, sealed_secret, scopes, groups_claim, mappings, create_users, created_at`

func scanProvider(row pgx.Row) (commands.IdentityProviderRow, error) {
	var p commands.IdentityProviderRow
	var mappings []byte
	err := row.Scan(&p.ID, &p.Config.Name, &p.Config.Issuer, &p.Config.ClientID, &p.SealedSecret, &p.Config.Scopes,
		&p.Config.GroupsClaim, &mappings, &p.Config.CreateUsers, &p.CreatedAt)
	if err == nil {
		err = json.Unmarshal(mappings, &p.Config.Mappings)
	}
	return p, err
}

func (s identities) Providers(ctx context.Context) ([]commands.IdentityProviderRow, error) {
	var out []commands.IdentityProviderRow
	err := tenantdb.ReadTx(ctx, s.pool, platform, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+providerColumns+` FROM identity_providers ORDER BY created_at, provider_id`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (commands.IdentityProviderRow, error) { return scanProvider(r) })
		return err
	})
	return out, err
}

func (s identities) Provider(ctx context.Context, id uuid.UUID) (commands.IdentityProviderRow, bool, error) {
	var p commands.IdentityProviderRow
	err := tenantdb.ReadTx(ctx, s.pool, platform, func(tx pgx.Tx) error {
		var err error
		p, err = scanProvider(tx.QueryRow(ctx, `SELECT `+providerColumns+` FROM identity_providers WHERE provider_id = $1`, id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return p, false, nil
	}
	return p, err == nil, err
}

func (s identities) StartLogin(ctx context.Context, l commands.OIDCLogin) error {
	return tenantdb.InTx(ctx, s.pool, platform, func(tx pgx.Tx) error {
		// Sign-ins never finished are forgotten a day after they expired.
		if _, err := tx.Exec(ctx, `DELETE FROM oidc_logins WHERE tenant_id = $1 AND expires_at < now() - interval '1 day'`, domain.PlatformTenant); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO oidc_logins (tenant_id, state_hash, provider_id, nonce, sealed_verifier, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, domain.PlatformTenant, l.StateHash, l.Provider, l.Nonce, l.SealedVerifier, l.ExpiresAt)
		return err
	})
}

func (s identities) TakeLogin(ctx context.Context, stateHash []byte) (commands.OIDCLogin, bool, error) {
	l := commands.OIDCLogin{StateHash: stateHash}
	err := tenantdb.InTx(ctx, s.pool, platform, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `UPDATE oidc_logins SET used_at = now()
			WHERE state_hash = $1 AND used_at IS NULL AND expires_at > now()
			RETURNING provider_id, nonce, sealed_verifier, expires_at`, stateHash).Scan(&l.Provider, &l.Nonce, &l.SealedVerifier, &l.ExpiresAt)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return l, false, nil
	}
	return l, err == nil, err
}

func (s identities) Identity(ctx context.Context, tenant, provider uuid.UUID, subject string) (uuid.UUID, bool, error) {
	var user uuid.UUID
	found, err := queryRow(ctx, s.pool, tenantScope(tenant), `SELECT user_id FROM user_identities WHERE provider_id = $1 AND subject = $2`,
		[]any{provider, subject}, &user)
	return user, found, err
}

// identityWriter writes providers and links inside AppendWith.
type identityWriter txTables

// ErrProviderNameTaken: another provider has the name.
var errProviderNameTaken = commands.ErrProviderNameTaken

func (w identityWriter) SaveProvider(ctx context.Context, p commands.IdentityProviderRow) error {
	mappings, err := json.Marshal(p.Config.Mappings)
	if err != nil {
		return err
	}
	_, err = w.tx.Exec(ctx, `INSERT INTO identity_providers (tenant_id, provider_id, name, issuer, client_id, sealed_secret, scopes, groups_claim, mappings, create_users)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (tenant_id, provider_id) DO UPDATE SET name = excluded.name, issuer = excluded.issuer, client_id = excluded.client_id,
			sealed_secret = CASE WHEN excluded.sealed_secret = '' THEN identity_providers.sealed_secret ELSE excluded.sealed_secret END,
			scopes = excluded.scopes, groups_claim = excluded.groups_claim, mappings = excluded.mappings, create_users = excluded.create_users`,
		domain.PlatformTenant, p.ID, p.Config.Name, p.Config.Issuer, p.Config.ClientID, p.SealedSecret, p.Config.Scopes,
		p.Config.GroupsClaim, mappings, p.Config.CreateUsers)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.ConstraintName == "identity_providers_name_key" {
		return errProviderNameTaken
	}
	return err
}

func (w identityWriter) DeleteProvider(ctx context.Context, id uuid.UUID) error {
	_, err := w.tx.Exec(ctx, `DELETE FROM identity_providers WHERE provider_id = $1`, id)
	return err
}

func (w identityWriter) Link(ctx context.Context, tenant, provider uuid.UUID, subject string, user uuid.UUID) error {
	_, err := w.tx.Exec(ctx, `INSERT INTO user_identities (tenant_id, provider_id, subject, user_id) VALUES ($1, $2, $3, $4)`,
		tenant, provider, subject, user)
	return err
}
