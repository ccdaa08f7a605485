package projections

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/tenantdb"
)

// BackupScheduleView is a row of the backup_schedules read model.
type BackupScheduleView struct {
	TenantID  uuid.UUID
	ID        uuid.UUID
	Config    domain.BackupScheduleConfig
	NextRunAt *time.Time
	LastRunAt *time.Time
	RunVMIDs  []uuid.UUID
	RunJitter time.Duration
	Version   int64
	CreatedAt time.Time
}

const scheduleColumns = `tenant_id, schedule_id, name, vm_ids, all_vms, calendar, mode, retention, enabled, next_run_at, last_run_at,
	run_vm_ids, run_jitter, version, created_at`

func scanSchedule(row pgx.CollectableRow) (BackupScheduleView, error) {
	var (
		s      BackupScheduleView
		ret    []byte
		jitter int64
	)
	err := row.Scan(&s.TenantID, &s.ID, &s.Config.Name, &s.Config.VMIDs, &s.Config.All, &s.Config.Calendar, &s.Config.Mode, &ret,
		&s.Config.Enabled, &s.NextRunAt, &s.LastRunAt, &s.RunVMIDs, &jitter, &s.Version, &s.CreatedAt)
	if err != nil {
		return s, err
	}
	s.RunJitter = time.Duration(jitter)
	return s, json.Unmarshal(ret, &s.Config.Retention)
}

// ListBackupSchedules lists a tenant's schedules, oldest first.
func ListBackupSchedules(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID, page Page) ([]BackupScheduleView, *PageKey, error) {
	after, id, limit := page.args()
	return queryPage(ctx, pool, tenantdb.Tenant(tenant), page, scanSchedule, func(s BackupScheduleView) PageKey { return PageKey{s.CreatedAt, s.ID} },
		`SELECT `+scheduleColumns+` FROM backup_schedules
		WHERE tenant_id = $1 AND (created_at, schedule_id) > ($2, $3) ORDER BY created_at, schedule_id LIMIT $4`, tenant, after, id, limit)
}

// GetBackupSchedule reads one schedule of a tenant; domain.ErrNotFound
// otherwise.
func GetBackupSchedule(ctx context.Context, pool *pgxpool.Pool, tenant, id uuid.UUID) (BackupScheduleView, error) {
	return queryOne(ctx, pool, tenantdb.Tenant(tenant), scanSchedule,
		`SELECT `+scheduleColumns+` FROM backup_schedules WHERE tenant_id = $1 AND schedule_id = $2`, tenant, id)
}

// ActiveBackupSchedules lists, across tenants, the schedules the backup
// scheduler has work for at now: due ones, and those whose last run began
// within openFor (its backups being asked for, or pruned after).
func ActiveBackupSchedules(ctx context.Context, pool *pgxpool.Pool, now time.Time, openFor time.Duration, limit int) ([]BackupScheduleView, error) {
	return queryRows(ctx, pool, tenantdb.System(), scanSchedule, `SELECT `+scheduleColumns+` FROM backup_schedules
		WHERE (enabled AND next_run_at <= $1) OR last_run_at > $2
		ORDER BY next_run_at NULLS LAST LIMIT $3`, now, now.Add(-openFor), limit)
}

// ScheduledVMs lists, for the scheduler, a tenant's VMs a run for every
// VM covers: provisioned and stopped or running.
func ScheduledVMs(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID) ([]uuid.UUID, error) {
	return queryRows(ctx, pool, tenantdb.System(), pgx.RowTo[uuid.UUID],
		`SELECT vm_id FROM vms WHERE tenant_id = $1 AND status IN ('running', 'stopped') AND vmid > 0
		ORDER BY vm_id LIMIT $2`, tenant, domain.MaxScheduleVMs)
}

// ScheduleBackups lists, for the scheduler, the backups a schedule took,
// by VM (every status), in one read.
func ScheduleBackups(ctx context.Context, pool *pgxpool.Pool, tenant, schedule uuid.UUID) (map[uuid.UUID][]BackupView, error) {
	list, err := queryRows(ctx, pool, tenantdb.System(), scanBackup, `SELECT `+backupColumns+` FROM backups
		WHERE tenant_id = $1 AND schedule_id = $2 ORDER BY created_at DESC LIMIT 100000`, tenant, schedule)
	out := map[uuid.UUID][]BackupView{}
	for _, b := range list {
		out[b.VMID] = append(out[b.VMID], b)
	}
	return out, err
}
