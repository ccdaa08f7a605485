package pvesim

import (
	"strings"
	"testing"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

// TestVzdumpToAFullStorageFailsAndKeepsOlderBackups: a backup to a full
// storage ends as "job errors" with vma's "No space left on device" in the
// log, leaves no archive, and the backups already there stay; once space
// is back the next backup succeeds.
func TestVzdumpToAFullStorageFailsAndKeepsOlderBackups(t *testing.T) {
	e, n := backupEnv(t, Options{})
	opts := &proxmox.VirtualMachineBackupOptions{VMID: 100, Mode: "snapshot", Storage: "backup-nfs"}
	e.ok(t)(n.Vzdump(e.ctx, opts))
	if err := e.sim.FillStorage("backup-nfs", true); err != nil {
		t.Fatal(err)
	}
	task := e.fails(t, "job errors")(n.Vzdump(e.ctx, opts))
	log := taskLog(t, e, task)
	if !strings.Contains(log, "ERROR: Backup of VM 100 failed - vma_queue_write: write error - No space left on device") {
		t.Fatalf("log:\n%s", log)
	}
	if got := backups(t, e, "pve1", "backup-nfs"); len(got) != 1 {
		t.Fatalf("backups after the failure: %+v", got)
	}
	if vm := e.vm(t, "pve1", 100); vm.Status != "running" || vm.Lock != "" {
		t.Fatalf("guest after the failed backup: status %q lock %q", vm.Status, vm.Lock)
	}
	if err := e.sim.FillStorage("backup-nfs", false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // vzdump's file names have one-second resolution
	e.ok(t)(n.Vzdump(e.ctx, opts))
	if got := backups(t, e, "pve1", "backup-nfs"); len(got) != 2 {
		t.Fatalf("backups after space came back: %+v", got)
	}
	if err := e.sim.FillStorage("nope", true); err == nil {
		t.Fatal("an unknown storage was filled")
	}
}

// TestSnapshotRollbackAndDeleteHoldTheirLocks: while a rollback runs the
// guest carries lock "rollback", while a deletion runs "snapshot-delete";
// both are gone when the workers end.
func TestSnapshotRollbackAndDeleteHoldTheirLocks(t *testing.T) {
	e := newEnv(t, Options{TimeScale: 200 * time.Millisecond}, false)
	_, task, err := e.vm(t, "pve1", 9000).Clone(e.ctx, &proxmox.VirtualMachineCloneOptions{NewID: 100, Name: "web-1", Full: true})
	e.ok(t)(task, err)
	vm := e.vm(t, "pve1", 100)
	e.ok(t)(vm.NewSnapshot(e.ctx, "before"))
	for _, step := range []struct {
		lock string
		run  func() (*proxmox.Task, error)
	}{
		{"rollback", func() (*proxmox.Task, error) {
			var upid proxmox.UPID
			err := e.client.Post(e.ctx, "/nodes/pve1/qemu/100/snapshot/before/rollback", nil, &upid)
			return proxmox.NewTask(upid, e.client), err
		}},
		{"snapshot-delete", func() (*proxmox.Task, error) {
			var upid proxmox.UPID
			err := e.client.Delete(e.ctx, "/nodes/pve1/qemu/100/snapshot/before", &upid)
			return proxmox.NewTask(upid, e.client), err
		}},
	} {
		task, err := step.run()
		if err != nil {
			t.Fatalf("%s: %v", step.lock, err)
		}
		var cfg map[string]any
		if err := e.client.Get(e.ctx, "/nodes/pve1/qemu/100/config", &cfg); err != nil || cfg["lock"] != step.lock {
			t.Fatalf("config while the %s runs: lock %v (%v)", step.lock, cfg["lock"], err)
		}
		e.ok(t)(task, nil)
		cfg = nil
		if err := e.client.Get(e.ctx, "/nodes/pve1/qemu/100/config", &cfg); err != nil || cfg["lock"] != nil {
			t.Fatalf("config after the %s: lock %v (%v)", step.lock, cfg["lock"], err)
		}
	}
}

// TestLockedWordingNamesTheGuestType: Proxmox's check_lock says "VM is
// locked (backup)" for a QEMU guest and "CT is locked (backup)" for a
// container.
func TestLockedWordingNamesTheGuestType(t *testing.T) {
	e := newEnv(t, Options{}, false)
	_, task, err := e.vm(t, "pve1", 9000).Clone(e.ctx, &proxmox.VirtualMachineCloneOptions{NewID: 100, Name: "web-1", Full: true})
	e.ok(t)(task, err)
	e.sim.HoldLock(100, "backup")
	e.fails(t, "VM is locked (backup)")(e.vm(t, "pve1", 100).Start(e.ctx))
	ct, err := e.node(t, "pve1").Container(e.ctx, 9100)
	if err != nil {
		t.Fatal(err)
	}
	_, task, err = ct.Clone(e.ctx, &proxmox.ContainerCloneOptions{NewID: 101, Hostname: "ct-1", Full: true})
	e.ok(t)(task, err)
	e.sim.HoldLock(101, "backup")
	c, err := e.node(t, "pve1").Container(e.ctx, 101)
	if err != nil {
		t.Fatal(err)
	}
	e.fails(t, "CT is locked (backup)")(c.Start(e.ctx))
}

// TestExtractConfigReadsAnArchiveBack: the configuration a backup holds,
// as "key: value" lines; an archive the node does not see is an error.
func TestExtractConfigReadsAnArchiveBack(t *testing.T) {
	e, n := backupEnv(t, Options{})
	e.ok(t)(n.Vzdump(e.ctx, &proxmox.VirtualMachineBackupOptions{VMID: 100, Mode: "snapshot", Storage: "local"}))
	vol := backups(t, e, "pve1", "local")[0].Volid
	var conf string
	if err := e.client.Get(e.ctx, "/nodes/pve1/vzdump/extractconfig?volume="+vol, &conf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(conf, "name: web-1\n") || !strings.Contains(conf, "scsi0: ") || strings.Contains(conf, "lock:") {
		t.Fatalf("config %q", conf)
	}
	var other string
	if err := e.client.Get(e.ctx, "/nodes/pve2/vzdump/extractconfig?volume="+vol, &other); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("another node's local archive: %q %v", other, err)
	}
}
