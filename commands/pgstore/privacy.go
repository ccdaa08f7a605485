package pgstore

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/privacy"
	"github.com/google/uuid"
)

// privacyWriter erases a person from the side tables inside the transaction
// of their user_erased event (scoped to their tenant).
type privacyWriter txTables

var _ commands.PrivacyWriter = privacyWriter{}

// EraseUser implements commands.PrivacyWriter. Read models the projectors
// keep are cleaned by the projectors from the event; these are the rows
// commands keeps beside the log, and the keys.
func (w privacyWriter) EraseUser(ctx context.Context, tenant, user uuid.UUID) error {
	steps := []struct{ what, sql string }{
		// The email (sign-in) and the password hash.
		{"credentials", `DELETE FROM user_credentials WHERE user_id = $1`},
		// Where and with what they signed in: ended, and forgotten.
		{"sessions", `UPDATE sessions SET ended_at = coalesce(ended_at, now()), end_reason = coalesce(end_reason, 'user_erased'),
			ip = '', user_agent = '' WHERE user_id = $1`},
		{"api tokens", `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()), last_used_ip = NULL WHERE user_id = $1`},
		{"two-factor", `DELETE FROM user_totp WHERE user_id = $1`},
		{"recovery codes", `DELETE FROM user_recovery_codes WHERE user_id = $1`},
		// The provider's subject they signed in as.
		{"identity links", `DELETE FROM user_identities WHERE user_id = $1`},
		{"console tickets", `DELETE FROM console_tickets WHERE user_id = $1`},
	}
	for _, s := range steps {
		if _, err := w.tx.Exec(ctx, s.sql, user); err != nil {
			return fmt.Errorf("erase %s: %w", s.what, err)
		}
	}
	// Snapshots of their stream hold the decrypted state (email, name);
	// only this owner's function may delete them (migration 00037).
	if _, err := w.tx.Exec(ctx, `SELECT erase_user_snapshots($1)`, user); err != nil {
		return fmt.Errorf("erase snapshots: %w", err)
	}
	return privacy.EraseSubjectTx(ctx, w.tx, tenant, user)
}
