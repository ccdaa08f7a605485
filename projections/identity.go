package projections

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/jackc/pgx/v5"
)

// Tenants keeps the tenants read model (table tenants).
type Tenants struct{}

var _ Projector = Tenants{}

// Name implements Projector.
func (Tenants) Name() string { return "tenants" }

// Tables implements Projector.
func (Tenants) Tables() []string { return []string{"tenants"} }

// EventTypes implements Projector.
func (Tenants) EventTypes() []string {
	return typesOf(&domain.TenantCreated{}, &domain.TenantRenamed{}, &domain.TenantQuotaChanged{},
		&domain.TenantSuspendedEvent{}, &domain.TenantResumed{})
}

// Apply implements Projector.
func (Tenants) Apply(ctx context.Context, tx pgx.Tx, e eventlog.Event) error {
	if e.Stream.Type != domain.StreamTenant {
		return nil
	}
	de, err := domain.DecodeEvent(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("tenants: %w", err)
	}
	id := e.Stream.ID
	switch ev := de.(type) {
	case *domain.TenantCreated:
		_, err = tx.Exec(ctx, `INSERT INTO tenants (tenant_id, name, status, max_vms, max_cores, max_memory_mb, max_disk_gb,
				max_snapshots_per_vm, max_backups_gb, max_ipv4, version, created_at, updated_at)
			VALUES ($1, $2, 'active', $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)`,
			id, ev.Name, ev.Quota.MaxVMs, ev.Quota.MaxCores, ev.Quota.MaxMemoryMB, ev.Quota.MaxDiskGB,
			ev.Quota.MaxSnapshotsPerVM, ev.Quota.MaxBackupsGB, ev.Quota.MaxIPv4, e.StreamVersion, e.RecordedAt)
	case *domain.TenantRenamed:
		_, err = tx.Exec(ctx, `UPDATE tenants SET name = $2, version = $3, updated_at = $4 WHERE tenant_id = $1`, id, ev.Name, e.StreamVersion, e.RecordedAt)
	case *domain.TenantQuotaChanged:
		_, err = tx.Exec(ctx, `UPDATE tenants SET max_vms = $2, max_cores = $3, max_memory_mb = $4, max_disk_gb = $5,
				max_snapshots_per_vm = $6, max_backups_gb = $7, max_ipv4 = $8, version = $9, updated_at = $10
			WHERE tenant_id = $1`, id, ev.Quota.MaxVMs, ev.Quota.MaxCores, ev.Quota.MaxMemoryMB, ev.Quota.MaxDiskGB,
			ev.Quota.MaxSnapshotsPerVM, ev.Quota.MaxBackupsGB, ev.Quota.MaxIPv4, e.StreamVersion, e.RecordedAt)
	case *domain.TenantSuspendedEvent:
		_, err = tx.Exec(ctx, `UPDATE tenants SET status = 'suspended', version = $2, updated_at = $3 WHERE tenant_id = $1`, id, e.StreamVersion, e.RecordedAt)
	case *domain.TenantResumed:
		_, err = tx.Exec(ctx, `UPDATE tenants SET status = 'active', version = $2, updated_at = $3 WHERE tenant_id = $1`, id, e.StreamVersion, e.RecordedAt)
	}
	return err
}

// Users keeps the users and role_bindings read models.
type Users struct{}

var _ Projector = Users{}

// Name implements Projector.
func (Users) Name() string { return "users" }

// Tables implements Projector.
func (Users) Tables() []string { return []string{"users", "role_bindings"} }

// EventTypes implements Projector.
func (Users) EventTypes() []string {
	return typesOf(&domain.UserCreated{}, &domain.UserRolesChanged{}, &domain.UserDisabledEvent{},
		&domain.UserEnabled{}, &domain.UserPasswordChanged{}, &domain.UserSessionsEnded{}, &domain.UserSSHKeyAdded{},
		&domain.UserSSHKeyRemoved{}, &domain.UserErased{})
}

// Apply implements Projector.
func (Users) Apply(ctx context.Context, tx pgx.Tx, e eventlog.Event) error {
	if e.Stream.Type != domain.StreamUser {
		return nil
	}
	de, err := domain.DecodeEvent(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	id := e.Stream.ID
	switch ev := de.(type) {
	case *domain.UserCreated:
		if _, err := tx.Exec(ctx, `INSERT INTO users (tenant_id, user_id, email, display_name, roles, status, version, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $7)`,
			e.TenantID, id, ev.Email, ev.DisplayName, ev.Roles, e.StreamVersion, e.RecordedAt); err != nil {
			return err
		}
		return bindRoles(ctx, tx, e, ev.Roles)
	case *domain.UserRolesChanged:
		if _, err := tx.Exec(ctx, `UPDATE users SET roles = $3, version = $4, updated_at = $5 WHERE tenant_id = $1 AND user_id = $2`,
			e.TenantID, id, ev.Roles, e.StreamVersion, e.RecordedAt); err != nil {
			return err
		}
		return bindRoles(ctx, tx, e, ev.Roles)
	case *domain.UserDisabledEvent:
		return setUserStatus(ctx, tx, e, "disabled")
	case *domain.UserEnabled:
		return setUserStatus(ctx, tx, e, "active")
	case *domain.UserErased:
		// Erased people are gone from the read models (docs/PRIVACY.md):
		// only their stream's ciphertext and their id remain.
		if _, err := tx.Exec(ctx, `DELETE FROM role_bindings WHERE tenant_id = $1 AND user_id = $2`, e.TenantID, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM users WHERE tenant_id = $1 AND user_id = $2`, e.TenantID, id)
	case *domain.UserPasswordChanged, *domain.UserSessionsEnded, *domain.UserSSHKeyAdded, *domain.UserSSHKeyRemoved:
		// The user's version moves; the keys themselves are user_ssh_keys'.
		_, err = tx.Exec(ctx, `UPDATE users SET version = $3, updated_at = $4 WHERE tenant_id = $1 AND user_id = $2`,
			e.TenantID, id, e.StreamVersion, e.RecordedAt)
	}
	return err
}

func setUserStatus(ctx context.Context, tx pgx.Tx, e eventlog.Event, status string) error {
	_, err := tx.Exec(ctx, `UPDATE users SET status = $3, version = $4, updated_at = $5 WHERE tenant_id = $1 AND user_id = $2`,
		e.TenantID, e.Stream.ID, status, e.StreamVersion, e.RecordedAt)
	return err
}

// bindRoles makes role_bindings hold exactly roles for the user, keeping the
// grant time of roles it already had.
func bindRoles(ctx context.Context, tx pgx.Tx, e eventlog.Event, roles []string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM role_bindings WHERE tenant_id = $1 AND user_id = $2 AND NOT (role = ANY($3))`,
		e.TenantID, e.Stream.ID, roles); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO role_bindings (tenant_id, user_id, role, granted_at)
		SELECT $1, $2, r, $4 FROM unnest($3::text[]) AS r ON CONFLICT DO NOTHING`, e.TenantID, e.Stream.ID, roles, e.RecordedAt)
	return err
}
