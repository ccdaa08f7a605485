package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
)

// Backups keeps the backups read model: every backup of the tenant's VMs
// that was asked for, until it is deleted. A VM has one backup action
// pending at a time, so a failure (vm_action_failed, which names no
// backup) settles the VM's one row in creating or deleting.
type Backups struct{}

var _ Projector = Backups{}

// Name implements Projector.
func (Backups) Name() string { return "backups" }

// Tables implements Projector.
func (Backups) Tables() []string { return []string{"backups"} }

// EventTypes implements Projector.
func (Backups) EventTypes() []string {
	return typesOf(&domain.VMBackupRequested{}, &domain.VMBackupCreated{}, &domain.VMBackupDeleteRequested{},
		&domain.VMBackupDeleted{}, &domain.VMActionFailed{}, &domain.VMOperationTimedOut{})
}

// Apply implements Projector.
func (Backups) Apply(ctx context.Context, tx pgx.Tx, e eventlog.Event) error {
	if e.Stream.Type != domain.StreamVM {
		return nil
	}
	de, err := domain.DecodeEvent(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("backups: %w", err)
	}
	var schedule any
	switch ev := de.(type) {
	case *domain.VMBackupRequested:
		if ev.ScheduleID != [16]byte{} {
			schedule = ev.ScheduleID
		}
		_, err = tx.Exec(ctx, `INSERT INTO backups (tenant_id, backup_id, vm_id, status, mode, storage, note, schedule_id, created_at, updated_at)
			VALUES ($1, $2, $3, 'creating', $4, $5, $6, $7, $8, $8)
			ON CONFLICT (tenant_id, backup_id) DO NOTHING`,
			e.TenantID, ev.BackupID, e.Stream.ID, ev.Mode, ev.Storage, ev.Note, schedule, e.RecordedAt)
	case *domain.VMBackupCreated:
		_, err = tx.Exec(ctx, `UPDATE backups SET status = 'available', volume_id = $3, size_bytes = $4, node = $5, verified = $6, updated_at = $7
			WHERE tenant_id = $1 AND backup_id = $2`, e.TenantID, ev.BackupID, ev.VolumeID, ev.SizeBytes, ev.Node, ev.Verified, e.RecordedAt)
	case *domain.VMBackupDeleteRequested:
		_, err = tx.Exec(ctx, `UPDATE backups SET status = 'deleting', updated_at = $3 WHERE tenant_id = $1 AND backup_id = $2`,
			e.TenantID, ev.BackupID, e.RecordedAt)
	case *domain.VMBackupDeleted:
		_, err = tx.Exec(ctx, `DELETE FROM backups WHERE tenant_id = $1 AND backup_id = $2`, e.TenantID, ev.BackupID)
	case *domain.VMActionFailed:
		err = settleBackup(ctx, tx, e, ev.Action, ev.Error)
	case *domain.VMOperationTimedOut:
		err = settleBackup(ctx, tx, e, ev.Action, fmt.Sprintf("no result from the agent within %s", ev.Deadline))
	}
	return err
}

// settleBackup records the failure of the VM's pending backup action: a
// backup that was being taken is failed, with Proxmox's message; one that
// was being deleted is available again.
func settleBackup(ctx context.Context, tx pgx.Tx, e eventlog.Event, action, msg string) error {
	var err error
	switch action {
	case domain.ActionBackup:
		_, err = tx.Exec(ctx, `UPDATE backups SET status = 'failed', error = $3, updated_at = $4
			WHERE tenant_id = $1 AND vm_id = $2 AND status = 'creating'`, e.TenantID, e.Stream.ID, msg, e.RecordedAt)
	case domain.ActionBackupDelete:
		_, err = tx.Exec(ctx, `UPDATE backups SET status = 'available', error = $3, updated_at = $4
			WHERE tenant_id = $1 AND vm_id = $2 AND status = 'deleting'`, e.TenantID, e.Stream.ID, msg, e.RecordedAt)
	}
	return err
}
