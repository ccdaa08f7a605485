package commands

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
)

// Snapshots and backups of VMs (domain/vm_snapshots.go, vm_backups.go):
// each is a VM action on the VM's stream, so the agent, results, timeouts
// and history work as for any other action.

// outcomeOf is the agent's result as the domain reads it.
func outcomeOf(r protocol.Result) domain.ActionOutcome {
	return domain.ActionOutcome{Action: r.Action, OK: r.Succeeded, TaskID: r.TaskID, Error: r.Error, Node: r.Node,
		PVEVMID: r.PVEVMID, Status: domain.VMStatus(r.GuestStatus), Snapshot: r.Snapshot, VolumeID: r.VolumeID, SizeBytes: r.SizeBytes,
		Verified: r.Verified}
}

// SnapshotVM requests a snapshot within the tenant's snapshots-per-VM quota.
func (h *Handler) SnapshotVM(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, name string, opts domain.SnapshotOptions) (Result, error) {
	t, err := h.openTenant(ctx, tenant)
	if err != nil {
		return Result{}, err
	}
	return h.onVM(ctx, a, o, t, id, false, func(v *domain.VM) ([]domain.Event, error) { return v.TakeSnapshot(name, opts, t.Quota) })
}

// RollbackSnapshot requests the VM rolled back to a snapshot.
func (h *Handler) RollbackSnapshot(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, name string) (Result, error) {
	return h.onOpenTenantVM(ctx, a, o, tenant, id, func(v *domain.VM) ([]domain.Event, error) { return v.RollbackSnapshot(name) })
}

// DeleteSnapshot requests a snapshot removed.
func (h *Handler) DeleteSnapshot(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, name string) (Result, error) {
	return h.onOpenTenantVM(ctx, a, o, tenant, id, func(v *domain.VM) ([]domain.Event, error) { return v.DeleteSnapshot(name) })
}

// BackupUsage reads how many bytes of backups a tenant keeps (the backups
// read model); the tables implement it when they can.
type BackupUsage interface {
	BackupBytes(ctx context.Context, tenant uuid.UUID) (int64, error)
}

// NewBackup is a backup request.
type NewBackup struct {
	Mode, Storage, Note string
	// ScheduleID is the schedule asking, uuid.Nil for a user.
	ScheduleID uuid.UUID
	// BackupID, if set, is the backup's id (a schedule's run derives it,
	// so a repeated run asks for the same backup).
	BackupID uuid.UUID
}

// BackupVM requests a backup of the VM to its cluster's backup storage. It
// returns the backup's id. A tenant whose backups already take
// max_backups_gb gets ErrQuotaExceeded (the size of a backup is only known
// once it exists, so the last one may go beyond the quota).
func (h *Handler) BackupVM(ctx context.Context, a Actor, o Options, tenant, vmID uuid.UUID, nb NewBackup) (Result, uuid.UUID, error) {
	id := nb.BackupID
	switch {
	case id != uuid.Nil:
	case o.IdempotencyKey != "":
		id = commandID(a, "backup:"+o.IdempotencyKey)
	default:
		id = uuid.Must(uuid.NewV7())
	}
	t, err := h.openTenant(ctx, tenant)
	if err != nil {
		return Result{}, id, err
	}
	if err := h.checkBackupQuota(ctx, t); err != nil {
		return Result{}, id, err
	}
	res, err := h.onVM(ctx, a, o, t, vmID, false, func(v *domain.VM) ([]domain.Event, error) {
		if !v.Exists() {
			return nil, domain.ErrNotFound
		}
		c, err := h.LoadCluster(ctx, v.ClusterID)
		if err != nil {
			return nil, err
		}
		storage := c.BackupStorageOrDefault()
		if nb.Storage != "" && nb.Storage != storage {
			return nil, &domain.ValidationError{Fields: map[string]string{"storage": "must be the cluster's backup storage, " + storage}}
		}
		return v.Backup(id, nb.Mode, storage, nb.Note, nb.ScheduleID)
	})
	return res, id, err
}

// checkBackupQuota refuses a backup while the tenant's backups take its
// max_backups_gb already.
func (h *Handler) checkBackupQuota(ctx context.Context, t *domain.Tenant) error {
	u, ok := h.tables.(BackupUsage)
	if !ok {
		return nil
	}
	used, err := u.BackupBytes(ctx, t.ID)
	if err != nil {
		return err
	}
	if limit := int64(t.Quota.BackupsGBLimit()) << 30; used >= limit {
		return fmt.Errorf("%w: backups_gb %.1f >= %d", domain.ErrQuotaExceeded, float64(used)/(1<<30), t.Quota.BackupsGBLimit())
	}
	return nil
}

// DeleteBackup requests a backup of the VM removed; reason is "" for a
// user, "retention" for a schedule's prune.
func (h *Handler) DeleteBackup(ctx context.Context, a Actor, o Options, tenant, vmID, backupID uuid.UUID, reason string) (Result, error) {
	return h.onOpenTenantVM(ctx, a, o, tenant, vmID, func(v *domain.VM) ([]domain.Event, error) {
		return v.DeleteBackup(backupID, reason)
	})
}

// RestoreBackup restores a backup of the VM vmID: in place over that VM
// (confirmName must be its name), or into a new VM named name under the
// tenant's quota. The result's id is the VM restored into.
func (h *Handler) RestoreBackup(ctx context.Context, a Actor, o Options, tenant, vmID, backupID uuid.UUID, inPlace bool, name, confirmName string) (Result, error) {
	if inPlace {
		return h.onOpenTenantVM(ctx, a, o, tenant, vmID, func(v *domain.VM) ([]domain.Event, error) {
			return v.RestoreInPlace(backupID, confirmName)
		})
	}
	t, err := h.openTenant(ctx, tenant)
	if err != nil {
		return Result{}, err
	}
	source, err := h.LoadVM(ctx, tenant, vmID)
	if err != nil {
		return Result{}, err
	}
	events, err := domain.RestoreAsNewVM(source, backupID, name)
	if err != nil {
		return Result{}, err
	}
	id := uuid.Must(uuid.NewV7())
	if o.IdempotencyKey != "" {
		id = commandID(a, "vm:"+o.IdempotencyKey)
	}
	return h.onVM(ctx, a, o, t, id, true, func(*domain.VM) ([]domain.Event, error) { return events, nil })
}

// SetClusterBackupStorage chooses the Proxmox storage a cluster's backups
// go to (platform admins).
func (h *Handler) SetClusterBackupStorage(ctx context.Context, a Actor, o Options, id uuid.UUID, storage string) (Result, error) {
	return h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		c, err := h.LoadCluster(ctx, id)
		if err != nil {
			return change{}, err
		}
		events, err := c.SetBackupStorage(storage)
		if err != nil {
			return change{}, err
		}
		return change{tenant: domain.PlatformTenant, stream: clusterStream(id), version: c.Version, events: events}, nil
	})
}
