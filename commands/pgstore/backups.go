package pgstore

import (
	"context"

	"github.com/google/uuid"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/tenantdb"
)

var (
	_ commands.BackupUsage   = (*Tables)(nil)
	_ commands.ScheduleCount = (*Tables)(nil)
)

// BackupBytes implements commands.BackupUsage from the backups read model.
func (t *Tables) BackupBytes(ctx context.Context, tenant uuid.UUID) (int64, error) {
	var n int64
	_, err := queryRow(ctx, t.pool, tenantdb.Tenant(tenant),
		`SELECT coalesce(sum(size_bytes), 0)::bigint FROM backups WHERE tenant_id = $1`, []any{tenant}, &n)
	return n, err
}

// BackupSchedules implements commands.ScheduleCount from the
// backup_schedules read model.
func (t *Tables) BackupSchedules(ctx context.Context, tenant uuid.UUID) (int, error) {
	var n int
	_, err := queryRow(ctx, t.pool, tenantdb.Tenant(tenant), `SELECT count(*) FROM backup_schedules WHERE tenant_id = $1`, []any{tenant}, &n)
	return n, err
}
