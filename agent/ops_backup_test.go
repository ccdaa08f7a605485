package agent

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/pvesim"
)

// TestBackupsAndRestoresAreIdempotent: every backup operation redelivered
// (a new request event for the same work, as after an agent crash) leaves
// what the first left: one archive per backup id, one guest per VM; a
// backup to a full storage reports the guest's own line of vzdump's log.
func TestBackupsAndRestoresAreIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	e.startAgent(nil)
	vm := uuid.New()
	e.ok(e.request(vm, e.createReq(domain.KindQEMU, "web-1", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 1024, DiskGB: 8})))
	g := e.guest(vm)

	backup := &domain.VMBackupRequested{BackupID: uuid.New(), Mode: domain.BackupSnapshot, Storage: "backup-nfs"}
	first := e.ok(e.request(vm, backup))
	again := e.ok(e.request(vm, backup))
	if !strings.HasPrefix(first.VolumeID, "backup-nfs:backup/vzdump-qemu-") || first.SizeBytes <= 0 || !first.Verified || again.VolumeID != first.VolumeID {
		t.Fatalf("backup %+v, again %+v", first, again)
	}
	if vols := e.sim.BackupVolumes(); !slices.Equal(vols, []string{first.VolumeID}) {
		t.Fatalf("archives %v", vols)
	}

	restore := &domain.VMRestoreRequested{BackupID: backup.BackupID, VolumeID: first.VolumeID, Node: g.Node}
	for range 2 {
		r := e.ok(e.request(vm, restore))
		if r.PVEVMID != g.VMID || r.Node != g.Node {
			t.Fatalf("restore %+v", r)
		}
		if got := e.guest(vm); got.VMID != g.VMID || got.Status != pvesim.StatusStopped {
			t.Fatalf("restored guest %+v", got)
		}
	}

	copyVM := uuid.New()
	create := e.createReq(domain.KindQEMU, "web-copy", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 1024, DiskGB: 8})
	create.Node = g.Node
	create.Restore = &domain.VMRestoreSource{BackupID: backup.BackupID, SourceVMID: vm, VolumeID: first.VolumeID}
	r1 := e.ok(e.request(copyVM, create))
	r2 := e.ok(e.request(copyVM, create))
	if c := e.guest(copyVM); c.VMID != r1.PVEVMID || r2.PVEVMID != r1.PVEVMID || c.Name != "web-copy" || c.Status != pvesim.StatusRunning {
		t.Fatalf("copy %+v, results %+v %+v", c, r1, r2)
	}

	// A restore Proxmox fails is reported with its message (the VM then
	// reads failed: vm_action_failed, never a half-restored VM without one).
	e.sim.FailNextTasks("qmrestore", 1, "")
	if r := e.result(e.request(vm, restore)); r.Succeeded || !strings.Contains(r.Error, "injected") {
		t.Fatalf("a failed restore: %+v", r)
	}

	del := &domain.VMBackupDeleteRequested{BackupID: backup.BackupID, VolumeID: first.VolumeID, Node: g.Node, ClusterID: e.cluster}
	e.ok(e.request(vm, del))
	e.ok(e.request(vm, del)) // gone already: done
	if vols := e.sim.BackupVolumes(); len(vols) != 0 {
		t.Fatalf("archives after delete %v", vols)
	}

	if err := e.sim.FillStorage("backup-nfs", true); err != nil {
		t.Fatal(err)
	}
	r := e.result(e.request(vm, &domain.VMBackupRequested{BackupID: uuid.New(), Mode: domain.BackupSnapshot, Storage: "backup-nfs"}))
	if r.Succeeded || !strings.Contains(r.Error, "Backup of VM") || !strings.Contains(r.Error, "No space left on device") {
		t.Fatalf("backup to a full storage: %+v", r)
	}
}
