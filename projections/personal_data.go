package projections

import (
	"context"
	"time"

	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PersonalData is what the read models and side tables hold about one
// person, for the export of their data (GET /v1/users/{id}/export): their
// profile, SSH keys, sessions (ended ones too, with where they came from),
// API tokens, two-factor status and identity links. Their events come from
// the log, not from here.
type PersonalData struct {
	User          UserView
	SSHKeys       []SSHKeyView
	Sessions      []PersonalSession
	APITokens     []PersonalAPIToken
	TOTPEnabled   bool
	IdentityLinks []IdentityLink
}

// PersonalSession is one session, open or ended.
type PersonalSession struct {
	ID                    uuid.UUID
	CreatedAt, LastSeenAt time.Time
	ExpiresAt             time.Time
	EndedAt               *time.Time
	EndReason             *string
	IP, UserAgent         string
}

// PersonalAPIToken is one API token, without its hash.
type PersonalAPIToken struct {
	ID                    uuid.UUID
	Name, Prefix          string
	Permissions           []string
	CreatedAt, ExpiresAt  time.Time
	RevokedAt, LastUsedAt *time.Time
	LastUsedIP            *string
}

// IdentityLink is a provider's subject that signs in as the person.
type IdentityLink struct {
	ProviderID uuid.UUID
	Subject    string
	CreatedAt  time.Time
}

// ReadPersonalData reads what is held about user in tenant, in one read
// transaction (one consistent view). A user not in the users read model is
// domain.ErrNotFound.
func ReadPersonalData(ctx context.Context, pool *pgxpool.Pool, tenant, user uuid.UUID) (PersonalData, error) {
	u, err := GetUser(ctx, pool, tenant, user)
	if err != nil {
		return PersonalData{}, err
	}
	d := PersonalData{User: u}
	err = tenantdb.ReadTx(ctx, pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT key_id, user_id, name, type, fingerprint, public_key, created_at FROM user_ssh_keys
			WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at, key_id`, tenant, user)
		if err != nil {
			return err
		}
		if d.SSHKeys, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (SSHKeyView, error) {
			var k SSHKeyView
			err := row.Scan(&k.ID, &k.UserID, &k.Name, &k.Type, &k.Fingerprint, &k.PublicKey, &k.CreatedAt)
			return k, err
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT session_id, created_at, last_seen_at, expires_at, ended_at, end_reason, ip, user_agent
			FROM sessions WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at, session_id`, tenant, user)
		if err != nil {
			return err
		}
		if d.Sessions, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (PersonalSession, error) {
			var s PersonalSession
			err := row.Scan(&s.ID, &s.CreatedAt, &s.LastSeenAt, &s.ExpiresAt, &s.EndedAt, &s.EndReason, &s.IP, &s.UserAgent)
			return s, err
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT token_id, name, prefix, permissions, created_at, expires_at, revoked_at, last_used_at, last_used_ip
			FROM api_tokens WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at, token_id`, tenant, user)
		if err != nil {
			return err
		}
		if d.APITokens, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (PersonalAPIToken, error) {
			var t PersonalAPIToken
			err := row.Scan(&t.ID, &t.Name, &t.Prefix, &t.Permissions, &t.CreatedAt, &t.ExpiresAt, &t.RevokedAt, &t.LastUsedAt, &t.LastUsedIP)
			return t, err
		}); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM user_totp WHERE tenant_id = $1 AND user_id = $2 AND enabled)`,
			tenant, user).Scan(&d.TOTPEnabled); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT provider_id, subject, created_at FROM user_identities
			WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at, provider_id`, tenant, user)
		if err != nil {
			return err
		}
		d.IdentityLinks, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (IdentityLink, error) {
			var l IdentityLink
			err := row.Scan(&l.ProviderID, &l.Subject, &l.CreatedAt)
			return l, err
		})
		return err
	})
	return d, err
}
