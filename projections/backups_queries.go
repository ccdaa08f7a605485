package projections

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/accountdb/accountdb/tenantdb"
)

// BackupView is a row of the backups read model.
type BackupView struct {
	ID         uuid.UUID
	VMID       uuid.UUID
	Status     string
	Mode       string
	Storage    string
	Node       string
	VolumeID   string
	SizeBytes  int64
	Verified   bool
	Note       string
	ScheduleID *uuid.UUID
	Error      string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

const backupColumns = `backup_id, vm_id, status, mode, storage, node, volume_id, size_bytes, verified, note, schedule_id, error, created_at, updated_at`

func scanBackup(row pgx.CollectableRow) (BackupView, error) {
	var b BackupView
	err := row.Scan(&b.ID, &b.VMID, &b.Status, &b.Mode, &b.Storage, &b.Node, &b.VolumeID, &b.SizeBytes, &b.Verified, &b.Note, &b.ScheduleID,
		&b.Error, &b.CreatedAt, &b.UpdatedAt)
	return b, err
}

// ListBackups lists a tenant's backups, newest first; vm, if not nil,
// keeps one VM's.
func ListBackups(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID, vm *uuid.UUID, page Page) ([]BackupView, *PageKey, error) {
	after, id, limit := page.args()
	if page.After == nil {
		after, id = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), uuid.Max
	}
	return queryPage(ctx, pool, tenantdb.Tenant(tenant), page, scanBackup, func(b BackupView) PageKey { return PageKey{b.CreatedAt, b.ID} },
		`SELECT `+backupColumns+` FROM backups
		WHERE tenant_id = $1 AND (created_at, backup_id) < ($2, $3) AND ($5::uuid IS NULL OR vm_id = $5)
		ORDER BY created_at DESC, backup_id DESC LIMIT $4`, tenant, after, id, limit, vm)
}

// GetBackup reads one backup of a tenant; domain.ErrNotFound otherwise.
func GetBackup(ctx context.Context, pool *pgxpool.Pool, tenant, id uuid.UUID) (BackupView, error) {
	return queryOne(ctx, pool, tenantdb.Tenant(tenant), scanBackup,
		`SELECT `+backupColumns+` FROM backups WHERE tenant_id = $1 AND backup_id = $2`, tenant, id)
}

// SnapshotView is a row of the vm_snapshots read model.
type SnapshotView struct {
	Name        string
	Parent      string
	Description string
	VMState     bool
	Status      string
	CreatedAt   time.Time
}

// ListSnapshots lists a VM's snapshots, oldest first (at most 1000: a
// tenant's quota keeps far fewer).
func ListSnapshots(ctx context.Context, pool *pgxpool.Pool, tenant, vm uuid.UUID) ([]SnapshotView, error) {
	return queryRows(ctx, pool, tenantdb.Tenant(tenant), func(row pgx.CollectableRow) (SnapshotView, error) {
		var s SnapshotView
		err := row.Scan(&s.Name, &s.Parent, &s.Description, &s.VMState, &s.Status, &s.CreatedAt)
		return s, err
	}, `SELECT name, parent, description, vmstate, status, created_at FROM vm_snapshots
		WHERE tenant_id = $1 AND vm_id = $2 ORDER BY created_at, name LIMIT 1000`, tenant, vm)
}
