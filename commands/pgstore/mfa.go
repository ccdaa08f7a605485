package pgstore

import (
	"context"
	"errors"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// mfaStore reads user_totp, user_recovery_codes and tenant_settings
// (migrations/00017).
type mfaStore struct{ pool *pgxpool.Pool }

func (s mfaStore) TOTP(ctx context.Context, tenant, user uuid.UUID) (commands.TOTPState, bool, error) {
	var st commands.TOTPState
	found, err := queryRow(ctx, s.pool, tenantScope(tenant), `SELECT sealed_secret, enabled, last_step FROM user_totp WHERE user_id = $1`,
		[]any{user}, &st.Sealed, &st.Enabled, &st.LastStep)
	return st, found, err
}

func (s mfaStore) RemainingRecoveryCodes(ctx context.Context, tenant, user uuid.UUID) (int, error) {
	var n int
	_, err := queryRow(ctx, s.pool, tenantScope(tenant), `SELECT count(*) FROM user_recovery_codes WHERE user_id = $1 AND used_at IS NULL`,
		[]any{user}, &n)
	return n, err
}

func (s mfaStore) RequireMFA(ctx context.Context, tenant uuid.UUID) (bool, error) {
	var required bool
	_, err := queryRow(ctx, s.pool, tenantScope(tenant), `SELECT require_mfa FROM tenant_settings WHERE tenant_id = $1`, []any{tenant}, &required)
	return required, err
}

func (s mfaStore) SetPendingTOTP(ctx context.Context, tenant, user uuid.UUID, sealed string) (bool, error) {
	var ok bool
	err := tenantdb.InTx(ctx, s.pool, tenantScope(tenant), func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO user_totp (tenant_id, user_id, sealed_secret) VALUES ($1, $2, $3)
			ON CONFLICT (tenant_id, user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, last_step = 0, created_at = now()
			WHERE NOT user_totp.enabled`, tenant, user, sealed)
		ok = tag.RowsAffected() == 1
		return err
	})
	return ok, err
}

// mfaWriter writes two-factor state inside AppendWith.
type mfaWriter txTables

func (w mfaWriter) EnableTOTP(ctx context.Context, user uuid.UUID, step int64, hashes [][]byte) (bool, error) {
	var tenant uuid.UUID
	err := w.tx.QueryRow(ctx, `UPDATE user_totp SET enabled = true, last_step = $2 WHERE user_id = $1 AND NOT enabled RETURNING tenant_id`,
		user, step).Scan(&tenant)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := w.tx.Exec(ctx, `DELETE FROM user_recovery_codes WHERE user_id = $1`, user); err != nil {
		return false, err
	}
	_, err = w.tx.Exec(ctx, `INSERT INTO user_recovery_codes (tenant_id, user_id, code_hash) SELECT $1, $2, unnest($3::bytea[])`,
		tenant, user, hashes)
	return err == nil, err
}

func (w mfaWriter) DisableTOTP(ctx context.Context, user uuid.UUID) error {
	if _, err := w.tx.Exec(ctx, `DELETE FROM user_recovery_codes WHERE user_id = $1`, user); err != nil {
		return err
	}
	_, err := w.tx.Exec(ctx, `DELETE FROM user_totp WHERE user_id = $1`, user)
	return err
}

func (w mfaWriter) ConsumeStep(ctx context.Context, user uuid.UUID, step int64) (bool, error) {
	tag, err := w.tx.Exec(ctx, `UPDATE user_totp SET last_step = $2 WHERE user_id = $1 AND enabled AND last_step < $2`, user, step)
	return tag.RowsAffected() == 1, err
}

func (w mfaWriter) ConsumeRecoveryCode(ctx context.Context, user uuid.UUID, hash []byte) (int, bool, error) {
	tag, err := w.tx.Exec(ctx, `UPDATE user_recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL`, user, hash)
	if err != nil || tag.RowsAffected() != 1 {
		return 0, false, err
	}
	var n int
	err = w.tx.QueryRow(ctx, `SELECT count(*) FROM user_recovery_codes WHERE user_id = $1 AND used_at IS NULL`, user).Scan(&n)
	return n, err == nil, err
}

func (w mfaWriter) SetRequireMFA(ctx context.Context, tenant uuid.UUID, required bool) error {
	_, err := w.tx.Exec(ctx, `INSERT INTO tenant_settings (tenant_id, require_mfa) VALUES ($1, $2)
		ON CONFLICT (tenant_id) DO UPDATE SET require_mfa = excluded.require_mfa`, tenant, required)
	return err
}

func (w mfaWriter) LiftEnrolmentOnly(ctx context.Context, user uuid.UUID) error {
	_, err := w.tx.Exec(ctx, `UPDATE sessions SET enrolment_only = false WHERE user_id = $1 AND enrolment_only`, user)
	return err
}
