package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/accountdb/accountdb/domain"
)

func takeSnapshot(t *testing.T, v *domain.VM, name string, opts domain.SnapshotOptions, q domain.Quota) {
	t.Helper()
	evs, err := v.TakeSnapshot(name, opts, q)
	if err != nil {
		t.Fatal(err)
	}
	apply(v, evs)
	apply(v, v.Result(domain.ActionSnapshot, true, "UPID:x", "", nil, nil, name))
}

// TestSnapshotTree: parents follow Proxmox's tree through takes, a
// rollback and a deletion; the quota bounds a VM's snapshots; RAM is
// saved only for a running QEMU guest.
func TestSnapshotTree(t *testing.T) {
	v := runningVM(t)
	q := domain.Quota{MaxSnapshotsPerVM: 3}
	takeSnapshot(t, v, "s-a", domain.SnapshotOptions{Description: "first"}, q)
	evs, _ := v.TakeSnapshot("s-b", domain.SnapshotOptions{VMState: true}, q)
	if r := evs[0].(*domain.VMSnapshotRequested); r.Parent != "s-a" || !r.VMState {
		t.Fatalf("b's request %+v", r)
	}
	apply(v, evs)
	apply(v, v.Result(domain.ActionSnapshot, true, "UPID:x", "", nil, nil, "s-b"))

	// Back to a, then c is a's child, not b's.
	evs, _ = v.RollbackSnapshot("s-a")
	apply(v, evs)
	if v.Status != domain.VMRunning || v.Pending != domain.ActionSnapshotRollback {
		t.Fatalf("rollback pending: %s %q", v.Status, v.Pending)
	}
	apply(v, v.BackupOrSnapshotResultOf(domain.ActionOutcome{Action: domain.ActionSnapshotRollback, OK: true, Snapshot: "s-a", Status: domain.VMStopped}))
	if v.Status != domain.VMStopped || v.SnapshotParent != "s-a" {
		t.Fatalf("after rollback: %s at %q", v.Status, v.SnapshotParent)
	}
	evs, _ = v.TakeSnapshot("s-c", domain.SnapshotOptions{VMState: true}, q)
	if r := evs[0].(*domain.VMSnapshotRequested); r.Parent != "s-a" || r.VMState {
		t.Fatalf("c's request on a stopped VM: %+v", r)
	}
	apply(v, evs)
	apply(v, v.Result(domain.ActionSnapshot, true, "UPID:x", "", nil, nil, "s-c"))
	if _, err := v.TakeSnapshot("s-d", domain.SnapshotOptions{}, q); !errors.Is(err, domain.ErrQuotaExceeded) {
		t.Fatalf("a fourth snapshot with a quota of 3: %v", err)
	}

	// Deleting a: b and c now hang from the root.
	evs, _ = v.DeleteSnapshot("s-a")
	apply(v, evs)
	deleted := v.BackupOrSnapshotResultOf(domain.ActionOutcome{Action: domain.ActionSnapshotDelete, OK: true, Snapshot: "s-a"})
	if d := deleted[0].(*domain.VMSnapshotDeleted); d.Name != "s-a" || d.Parent != "" {
		t.Fatalf("deleted %+v", d)
	}
	apply(v, deleted)
	if v.SnapshotParents["s-b"] != "" || v.SnapshotParents["s-c"] != "" || len(v.Snapshots) != 2 || v.SnapshotParent != "s-c" {
		t.Fatalf("after deleting a: %v %v at %q", v.Snapshots, v.SnapshotParents, v.SnapshotParent)
	}
	if _, err := v.DeleteSnapshot("s-a"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("deleting it again: %v", err)
	}
	lxc := &domain.VM{ID: uuid.New(), Version: 2, Status: domain.VMRunning, Kind: domain.KindLXC, VMID: 101}
	var ve *domain.ValidationError
	if _, err := lxc.TakeSnapshot("x1", domain.SnapshotOptions{VMState: true}, q); !errors.As(err, &ve) || ve.Fields["vmstate"] == "" {
		t.Fatalf("a container's RAM: %v", err)
	}
}

// TestBackupLife: a backup asked twice under one id is one; a failure
// leaves it failed and the VM where it was; deleting a failed one needs no
// agent; restoring in place needs the VM's name; a restore into a new VM
// takes the size the backup was taken with.
func TestBackupLife(t *testing.T) {
	v := runningVM(t)
	id := uuid.New()
	evs, err := v.Backup(id, "", "backup-nfs", "nightly", uuid.Nil)
	if err != nil || evs[0].(*domain.VMBackupRequested).Mode != domain.BackupSnapshot {
		t.Fatalf("backup: %v %v", evs, err)
	}
	apply(v, evs)
	if again, err := v.Backup(id, "", "backup-nfs", "", uuid.Nil); err != nil || again != nil {
		t.Fatalf("the same backup asked again: %v %v", again, err)
	}
	apply(v, v.BackupOrSnapshotResultOf(domain.ActionOutcome{Action: domain.ActionBackup, OK: true, VolumeID: "backup-nfs:backup/x.vma.zst", SizeBytes: 42, Node: "pve1"}))
	if b := v.FindBackup(id); b.Status != domain.BackupAvailable || b.VolumeID == "" || v.Pending != "" || v.Status != domain.VMRunning {
		t.Fatalf("after success: %+v, VM %s %q", b, v.Status, v.Pending)
	}

	failed := uuid.New()
	evs, _ = v.Backup(failed, domain.BackupStop, "backup-nfs", "", uuid.Nil)
	apply(v, evs)
	msg := "Backup of VM 101 failed - vma_queue_write: write error - No space left on device"
	apply(v, v.BackupOrSnapshotResultOf(domain.ActionOutcome{Action: domain.ActionBackup, Error: msg}))
	if b := v.FindBackup(failed); b.Status != domain.BackupFailed || v.LastError != msg || v.Status != domain.VMRunning {
		t.Fatalf("after failure: %+v, VM %s %q", b, v.Status, v.LastError)
	}
	evs, err = v.DeleteBackup(failed, "")
	if err != nil || evs[0].EventType() != "vm_backup_deleted" {
		t.Fatalf("deleting a failed backup: %v %v", evs, err)
	}

	if _, err := v.RestoreInPlace(id, "web-2"); !errors.Is(err, domain.ErrConfirmationRequired) {
		t.Fatalf("restore with the wrong name: %v", err)
	}
	v.Spec.Cores = 4 // resized since the backup
	evs, err = v.RestoreInPlace(id, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	apply(v, evs)
	if v.Status != domain.VMProvisioning || v.Allocated().Cores != 4 {
		t.Fatalf("restoring: %s, allocated %+v", v.Status, v.Allocated())
	}
	apply(v, v.BackupOrSnapshotResultOf(domain.ActionOutcome{Action: domain.ActionRestore, OK: true, Node: "pve1", PVEVMID: 101}))
	if v.Status != domain.VMStopped || v.Spec.Cores != 2 || v.Restoring != uuid.Nil {
		t.Fatalf("restored: %s %+v", v.Status, v.Spec)
	}

	evs, err = domain.RestoreAsNewVM(v, id, "web-copy")
	if err != nil {
		t.Fatal(err)
	}
	if c := evs[0].(*domain.VMCreateRequested); c.Name != "web-copy" || c.Spec.Cores != 2 || c.Restore == nil || c.Restore.VolumeID == "" || c.Node != "pve1" {
		t.Fatalf("restore as new: %+v", c)
	}
	if _, err := domain.RestoreAsNewVM(v, id, "web-1"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("a new VM named as the source: %v", err)
	}
	if _, err := domain.RestoreAsNewVM(v, failed, "x"); err == nil {
		t.Fatal("restored a failed backup")
	}
}

func TestBackupsAndRestoresMayRunForHours(t *testing.T) {
	base := 10 * time.Minute
	for action, want := range map[string]time.Duration{domain.ActionBackup: domain.LongActionDeadline, domain.ActionRestore: domain.LongActionDeadline,
		domain.ActionSnapshot: base, domain.ActionStart: base, domain.ActionBackupDelete: base} {
		if got := domain.ActionDeadline(action, base); got != want {
			t.Errorf("%s: %s, want %s", action, got, want)
		}
	}
	if got := domain.ActionDeadline(domain.ActionBackup, 12*time.Hour); got != 12*time.Hour {
		t.Errorf("a longer base deadline is kept: %s", got)
	}
}
