package pvesim

import (
	"testing"

	proxmox "github.com/luthermonson/go-proxmox"
)

func TestCloneFromTemplate(t *testing.T) {
	e := newEnv(t, Options{}, true)
	tmpl := e.vm(t, "pve1", 9000)

	newid, task, err := tmpl.Clone(e.ctx, &proxmox.VirtualMachineCloneOptions{Name: "app-1", Target: "pve3"})
	e.ok(t)(task, err)
	if newid != 100 || task.Type != "qmclone" || task.ID != "9000" {
		t.Fatalf("newid=%d task=%+v", newid, task)
	}
	vm := e.vm(t, "pve3", newid)
	cfg := vm.VirtualMachineConfig
	if vm.Name != "app-1" || bool(cfg.Template) || cfg.Lock != "" {
		t.Fatalf("clone config = %+v", cfg)
	}
	if cfg.SCSIs["scsi0"] != "local-lvm:base-9000-disk-0/vm-100-disk-0,size=8G" {
		t.Fatalf("linked clone disk = %q", cfg.SCSIs["scsi0"])
	}
	if cfg.Nets["net0"] == tmpl.VirtualMachineConfig.Nets["net0"] {
		t.Fatal("clone kept the template's MAC address")
	}

	// Full clone with explicit id and default name.
	newid, task, err = tmpl.Clone(e.ctx, &proxmox.VirtualMachineCloneOptions{NewID: 150, Full: true})
	e.ok(t)(task, err)
	full := e.vm(t, "pve1", newid)
	if full.Name != "Copy-of-VM-debian-12" || full.VirtualMachineConfig.SCSIs["scsi0"] != "local-lvm:vm-150-disk-0,size=8G" {
		t.Fatalf("full clone = %q %q", full.Name, full.VirtualMachineConfig.SCSIs["scsi0"])
	}

	// The id is taken now, so cloning onto it is refused synchronously.
	_, _, err = tmpl.Clone(e.ctx, &proxmox.VirtualMachineCloneOptions{NewID: 150})
	wantErr(t, err, "VM 150 already exists on node 'pve1'")

	// Templates cannot be started.
	e.fails(t, "you can't start a vm if it's a template")(tmpl.Start(e.ctx))
}

func TestPowerCycleResizeConfig(t *testing.T) {
	e := newEnv(t, Options{}, false)
	tmpl := e.vm(t, "pve1", 9001)
	id, task, err := tmpl.Clone(e.ctx, &proxmox.VirtualMachineCloneOptions{Name: "db-1"})
	e.ok(t)(task, err)
	vm := e.vm(t, "pve1", id)

	_, err = vm.Reboot(e.ctx)
	wantErr(t, err, "VM 100 not running")

	e.ok(t)(vm.Start(e.ctx))
	e.ok(t)(vm.Reboot(e.ctx))
	e.ok(t)(vm.Reset(e.ctx))
	e.ok(t)(vm.Pause(e.ctx))
	if err := vm.Ping(e.ctx); err != nil || !vm.IsPaused() {
		t.Fatalf("paused? %+v %v", vm, err)
	}
	_, err = vm.Shutdown(e.ctx)
	wantErr(t, err, "VM is paused - cannot shutdown")
	e.ok(t)(vm.Resume(e.ctx))
	if err := vm.Ping(e.ctx); err != nil || !vm.IsRunning() {
		t.Fatalf("resumed? %+v %v", vm, err)
	}
	e.ok(t)(vm.Hibernate(e.ctx))
	if err := vm.Ping(e.ctx); err != nil || !vm.IsHibernated() {
		t.Fatalf("hibernated? status=%s lock=%s %v", vm.Status, vm.Lock, err)
	}
	e.ok(t)(vm.Resume(e.ctx))
	e.ok(t)(vm.Stop(e.ctx))

	// Resize grows the disk; shrinking is refused like PVE.
	e.ok(t)(vm.ResizeDisk(e.ctx, "scsi0", "+22G"))
	if err := vm.Ping(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := vm.VirtualMachineConfig.SCSIs["scsi0"]; got != "local-lvm:base-9001-disk-0/vm-100-disk-0,size=32G" {
		t.Fatalf("resized disk = %q", got)
	}
	_, err = vm.ResizeDisk(e.ctx, "scsi0", "10G")
	wantErr(t, err, "shrinking disks is not supported")
	_, err = vm.ResizeDisk(e.ctx, "scsi5", "+1G")
	wantErr(t, err, "disk 'scsi5' does not exist")

	// Async config (POST) and sync config (PUT), tags via AddTag.
	e.ok(t)(vm.Config(e.ctx, proxmox.VirtualMachineOption{Name: "memory", Value: 4096}, proxmox.VirtualMachineOption{Name: "cores", Value: 4}))
	if err := vm.ConfigSync(e.ctx, proxmox.VirtualMachineOption{Name: "description", Value: "tenant db"}); err != nil {
		t.Fatal(err)
	}
	if err := vm.Ping(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.ok(t)(vm.AddTag(e.ctx, "tenant-42"))
	vm = e.vm(t, "pve1", id)
	cfg := vm.VirtualMachineConfig
	if int(cfg.Memory) != 4096 || *cfg.Cores != 4 || cfg.Description != "tenant db" || !vm.HasTag("tenant-42") {
		t.Fatalf("config after update = %+v", cfg)
	}
	if r := e.resource(t, id); r.MaxMem != 4096<<20 || r.MaxCPU != 4 || r.Tags != "tenant-42" {
		t.Fatalf("resource after update = %+v", r)
	}
	// Bad values answer 400 with PVE's errors map.
	err = vm.ConfigSync(e.ctx, proxmox.VirtualMachineOption{Name: "memory", Value: "lots"}, proxmox.VirtualMachineOption{Name: "bogus", Value: 1})
	wantErr(t, err, "400 Parameter verification failed.")
	wantErr(t, err, `"memory":`)
	wantErr(t, err, `"bogus":"property is not defined in schema`)
}

func TestSnapshots(t *testing.T) {
	e := newEnv(t, Options{}, true)
	id, task, err := e.vm(t, "pve1", 9000).Clone(e.ctx, nil)
	e.ok(t)(task, err)
	vm := e.vm(t, "pve1", id)

	e.ok(t)(vm.NewSnapshot(e.ctx, "before-upgrade"))
	if err := vm.ConfigSync(e.ctx, proxmox.VirtualMachineOption{Name: "memory", Value: 8192}); err != nil {
		t.Fatal(err)
	}
	e.ok(t)(vm.NewSnapshot(e.ctx, "after-upgrade"))
	e.fails(t, "snapshot name 'after-upgrade' already used")(vm.NewSnapshot(e.ctx, "after-upgrade"))
	_, err = vm.NewSnapshot(e.ctx, "current")
	wantErr(t, err, "reserved name")
	_, err = vm.NewSnapshot(e.ctx, "9bad")
	wantErr(t, err, "invalid configuration ID")

	snaps, err := vm.Snapshots(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 3 || snaps[0].Name != "before-upgrade" || snaps[1].Parent != "before-upgrade" || snaps[2].Name != "current" || snaps[2].Parent != "after-upgrade" {
		t.Fatalf("snapshots = %+v %+v %+v", snaps[0], snaps[1], snaps[2])
	}
	conf, err := vm.Snapshot("before-upgrade").Config(e.ctx)
	if err != nil || conf["memory"] != "2048" {
		t.Fatalf("snapshot config = %v, %v", conf, err)
	}

	e.ok(t)(vm.Snapshot("before-upgrade").Rollback(e.ctx))
	vm = e.vm(t, "pve1", id)
	if int(vm.VirtualMachineConfig.Memory) != 2048 {
		t.Fatalf("rollback memory = %d", vm.VirtualMachineConfig.Memory)
	}
	e.ok(t)(vm.Snapshot("after-upgrade").Delete(e.ctx))
	e.fails(t, "snapshot 'after-upgrade' does not exist")(vm.Snapshot("after-upgrade").Delete(e.ctx))
	snaps, err = vm.Snapshots(e.ctx)
	if err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots after delete = %d, %v", len(snaps), err)
	}
}
