package projections

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/jackc/pgx/v5"
)

// UserSSHKeys keeps the user_ssh_keys read model: each user's SSH public
// keys, from the key events on the user's stream.
type UserSSHKeys struct{}

var _ Projector = UserSSHKeys{}

// Name implements Projector.
func (UserSSHKeys) Name() string { return "user_ssh_keys" }

// Tables implements Projector.
func (UserSSHKeys) Tables() []string { return []string{"user_ssh_keys"} }

// EventTypes implements Projector.
func (UserSSHKeys) EventTypes() []string {
	return typesOf(&domain.UserSSHKeyAdded{}, &domain.UserSSHKeyRemoved{}, &domain.UserErased{})
}

// Apply implements Projector.
func (UserSSHKeys) Apply(ctx context.Context, tx pgx.Tx, e eventlog.Event) error {
	if e.Stream.Type != domain.StreamUser {
		return nil
	}
	de, err := domain.DecodeEvent(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("user_ssh_keys: %w", err)
	}
	switch ev := de.(type) {
	case *domain.UserSSHKeyAdded:
		_, err = tx.Exec(ctx, `INSERT INTO user_ssh_keys (tenant_id, key_id, user_id, name, type, fingerprint, public_key, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			e.TenantID, ev.KeyID, e.Stream.ID, ev.Name, ev.Type, ev.Fingerprint, ev.PublicKey, e.RecordedAt)
	case *domain.UserSSHKeyRemoved:
		_, err = tx.Exec(ctx, `DELETE FROM user_ssh_keys WHERE tenant_id = $1 AND key_id = $2 AND user_id = $3`,
			e.TenantID, ev.KeyID, e.Stream.ID)
	case *domain.UserErased: // their keys' names and comments are theirs
		_, err = tx.Exec(ctx, `DELETE FROM user_ssh_keys WHERE tenant_id = $1 AND user_id = $2`, e.TenantID, e.Stream.ID)
	}
	return err
}
