package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
)

// BackupSchedules keeps the backup_schedules read model: each schedule's
// configuration, next run and last run.
type BackupSchedules struct{}

var _ Projector = BackupSchedules{}

// Name implements Projector.
func (BackupSchedules) Name() string { return "backup_schedules" }

// Tables implements Projector.
func (BackupSchedules) Tables() []string { return []string{"backup_schedules"} }

// EventTypes implements Projector.
func (BackupSchedules) EventTypes() []string {
	return typesOf(&domain.BackupScheduleCreated{}, &domain.BackupScheduleUpdated{}, &domain.BackupScheduleDeleted{},
		&domain.BackupScheduleRunStarted{})
}

// Apply implements Projector.
func (BackupSchedules) Apply(ctx context.Context, tx pgx.Tx, e eventlog.Event) error {
	if e.Stream.Type != domain.StreamBackupSchedule {
		return nil
	}
	de, err := domain.DecodeEvent(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("backup_schedules: %w", err)
	}
	save := func(c domain.BackupScheduleConfig, next any) error {
		ret, err := json.Marshal(c.Retention)
		if err != nil {
			return err
		}
		ids := c.VMIDs
		if ids == nil {
			ids = []uuid.UUID{}
		}
		_, err = tx.Exec(ctx, `INSERT INTO backup_schedules (tenant_id, schedule_id, name, vm_ids, all_vms, calendar, mode, retention,
				enabled, next_run_at, version, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (tenant_id, schedule_id) DO UPDATE SET name = EXCLUDED.name, vm_ids = EXCLUDED.vm_ids, all_vms = EXCLUDED.all_vms,
				calendar = EXCLUDED.calendar, mode = EXCLUDED.mode, retention = EXCLUDED.retention, enabled = EXCLUDED.enabled,
				next_run_at = EXCLUDED.next_run_at, version = EXCLUDED.version`,
			e.TenantID, e.Stream.ID, c.Name, ids, c.All, c.Calendar, c.Mode, ret, c.Enabled, next, e.StreamVersion, e.RecordedAt)
		return err
	}
	switch ev := de.(type) {
	case *domain.BackupScheduleCreated:
		err = save(ev.BackupScheduleConfig, nullTime(ev.NextRunAt))
	case *domain.BackupScheduleUpdated:
		err = save(ev.BackupScheduleConfig, nullTime(ev.NextRunAt))
	case *domain.BackupScheduleDeleted:
		_, err = tx.Exec(ctx, `DELETE FROM backup_schedules WHERE tenant_id = $1 AND schedule_id = $2`, e.TenantID, e.Stream.ID)
	case *domain.BackupScheduleRunStarted:
		ids := ev.VMIDs
		if ids == nil {
			ids = []uuid.UUID{}
		}
		_, err = tx.Exec(ctx, `UPDATE backup_schedules SET last_run_at = $3, run_vm_ids = $4, run_jitter = $5, next_run_at = $6, version = $7
			WHERE tenant_id = $1 AND schedule_id = $2`,
			e.TenantID, e.Stream.ID, ev.Slot, ids, int64(ev.Jitter), nullTime(ev.NextRunAt), e.StreamVersion)
	}
	return err
}

// nullTime is t, or SQL NULL for the zero time (no next run).
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
