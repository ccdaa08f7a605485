package domaintest

import (
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/accountdb/accountdb/domain"
)

// snapshotsAndBackups is a VM's life through every snapshot and backup
// event: two snapshots, a rollback, a deletion; a backup taken, one failed
// on a full storage, one timed out, one deleted, a restore in place; a
// snapshot and a backup kept.
func snapshotsAndBackups(r *rand.Rand, cluster uuid.UUID) []domain.Event {
	p := provisioned(r, cluster).(*domain.VMProvisioned)
	s := spec(r)
	ok, failed, lost, last := id(r), id(r), id(r), id(r)
	vol := "backup-nfs:backup/vzdump-qemu-" + name(r, "1") + ".vma.zst"
	return []domain.Event{p,
		&domain.VMSnapshotRequested{Name: "first", Description: name(r, "before")},
		&domain.VMActionSucceeded{Action: domain.ActionSnapshot, TaskID: "UPID:pve1:snapshot", Snapshot: "first"},
		&domain.VMSnapshotRequested{Name: "second", Parent: "first", VMState: true},
		&domain.VMActionSucceeded{Action: domain.ActionSnapshot, TaskID: "UPID:pve1:snapshot", Snapshot: "second"},
		&domain.VMSnapshotRollbackRequested{Name: "first"},
		&domain.VMSnapshotRolledBack{Name: "first", TaskID: "UPID:pve1:rollback", Status: domain.VMStopped},
		&domain.VMSnapshotDeleteRequested{Name: "first"},
		&domain.VMSnapshotDeleted{Name: "first", TaskID: "UPID:pve1:delsnapshot"},
		&domain.VMBackupRequested{BackupID: ok, Mode: domain.BackupSnapshot, Storage: "backup-nfs", Note: name(r, "nightly"), Spec: s},
		&domain.VMBackupCreated{BackupID: ok, VolumeID: vol, SizeBytes: int64(r.IntN(1 << 30)), Node: p.Node, TaskID: "UPID:pve1:vzdump", Verified: true},
		&domain.VMBackupRequested{BackupID: failed, Mode: domain.BackupStop, Storage: "backup-nfs", Spec: s, ScheduleID: id(r)},
		&domain.VMActionFailed{Action: domain.ActionBackup, TaskID: "UPID:pve1:vzdump",
			Error: "Backup of VM 100 failed - vma_queue_write: write error - No space left on device"},
		&domain.VMBackupRequested{BackupID: lost, Mode: domain.BackupSuspend, Storage: "backup-nfs", Spec: s},
		&domain.VMOperationTimedOut{Action: domain.ActionBackup, Deadline: 10 * time.Minute},
		&domain.VMBackupDeleted{BackupID: failed},
		&domain.VMRestoreRequested{BackupID: ok, VolumeID: vol, Node: p.Node, Spec: s},
		&domain.VMRestored{BackupID: ok, Node: p.Node, VMID: p.VMID, TaskID: "UPID:pve1:qmrestore"},
		&domain.VMBackupDeleteRequested{BackupID: ok, VolumeID: vol, Node: p.Node, ClusterID: cluster},
		&domain.VMActionFailed{Action: domain.ActionBackupDelete, Error: "volume is busy"},
		&domain.VMBackupDeleteRequested{BackupID: ok, VolumeID: vol, Node: p.Node, ClusterID: cluster, Reason: "retention"},
		&domain.VMBackupDeleted{BackupID: ok, TaskID: "UPID:pve1:imgdel"},
		&domain.VMSnapshotRequested{Name: "kept", Description: name(r, "after restore")},
		&domain.VMActionSucceeded{Action: domain.ActionSnapshot, TaskID: "UPID:pve1:snapshot", Snapshot: "kept"},
		&domain.VMBackupRequested{BackupID: last, Mode: domain.BackupSnapshot, Storage: "backup-nfs", Spec: s},
		&domain.VMBackupCreated{BackupID: last, VolumeID: vol, SizeBytes: int64(r.IntN(1 << 30)), Node: p.Node, TaskID: "UPID:pve1:vzdump"},
	}
}

// backupSchedules gives a tenant a schedule that runs twice and is
// changed, and one created and deleted.
func (c *corpus) backupSchedules(tenant uuid.UUID) {
	vm := id(c.r)
	cfg := domain.BackupScheduleConfig{Name: name(c.r, "nightly"), VMIDs: []uuid.UUID{vm}, Calendar: "mon..fri 02:00",
		Mode: domain.BackupSnapshot, Retention: domain.Retention{KeepLast: 3, KeepDaily: 7}, Enabled: true}
	slot := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	changed := cfg
	changed.VMIDs, changed.All, changed.Calendar = nil, true, "sat *-*-* 03:00"
	c.add(tenant, domain.StreamBackupSchedule,
		&domain.BackupScheduleCreated{BackupScheduleConfig: cfg, NextRunAt: slot},
		&domain.BackupScheduleRunStarted{Slot: slot, VMIDs: []uuid.UUID{vm}, Jitter: 5 * time.Minute, NextRunAt: slot.AddDate(0, 0, 1)},
		&domain.BackupScheduleUpdated{BackupScheduleConfig: changed, NextRunAt: slot.AddDate(0, 0, 2)},
		&domain.BackupScheduleRunStarted{Slot: slot.AddDate(0, 0, 2), VMIDs: []uuid.UUID{vm, id(c.r)}, NextRunAt: slot.AddDate(0, 0, 9)})
	c.add(tenant, domain.StreamBackupSchedule,
		&domain.BackupScheduleCreated{BackupScheduleConfig: cfg, NextRunAt: slot},
		&domain.BackupScheduleDeleted{})
}
