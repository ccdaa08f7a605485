package pvesim

import (
	"errors"
	"strings"
	"testing"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

func TestFailNextTasks(t *testing.T) {
	e := newEnv(t, Options{}, false)
	n := e.node(t, "pve1")

	e.sim.FailNextTasks("qmcreate", 1, "")
	e.fails(t, "unable to create guest")(n.NewVirtualMachine(e.ctx, 100, proxmox.VirtualMachineOption{Name: "scsi0", Value: "local-lvm:8"}))
	if _, ok := e.sim.Guest(100); ok {
		t.Fatal("failed create left the guest behind")
	}
	e.ok(t)(n.NewVirtualMachine(e.ctx, 100))

	tmpl := e.vm(t, "pve1", 9000)
	e.sim.FailNextTasks("qmclone", 2, "clone failed: injected")
	for i := 0; i < 2; i++ {
		id, task, err := tmpl.Clone(e.ctx, &proxmox.VirtualMachineCloneOptions{NewID: 101})
		e.fails(t, "clone failed: injected")(task, err)
		if r := e.resource(t, id); r != nil {
			t.Fatalf("failed clone left %+v", r)
		}
	}
	_, task, err := tmpl.Clone(e.ctx, &proxmox.VirtualMachineCloneOptions{NewID: 101})
	e.ok(t)(task, err)

	vm := e.vm(t, "pve1", 101)
	e.sim.FailNextTasks("qmstart", 1, "")
	e.fails(t, "start failed: QEMU exited with code 1")(vm.Start(e.ctx))
	if r := e.resource(t, 101); r.Status != "stopped" {
		t.Fatalf("failed start changed status to %s", r.Status)
	}
	e.ok(t)(vm.Start(e.ctx))
}

func TestRequestFaults(t *testing.T) {
	e := newEnv(t, Options{}, true)

	e.sim.FailNextRequests(2, 0)
	for i := 0; i < 2; i++ {
		_, err := e.client.Nodes(e.ctx)
		wantErr(t, err, "500 Internal Server Error (pvesim injected fault)")
	}
	if _, err := e.client.Nodes(e.ctx); err != nil {
		t.Fatalf("after faults: %v", err)
	}

	e.sim.SetErrorRate(0.5, 500)
	failed := 0
	for i := 0; i < 100; i++ {
		if _, err := e.client.Version(e.ctx); err != nil {
			failed++
		}
	}
	if failed < 25 || failed > 75 {
		t.Fatalf("error rate 0.5 failed %d/100 requests", failed)
	}
	e.sim.ClearFaults()

	e.sim.SetLatency(60 * time.Millisecond)
	start := time.Now()
	if _, err := e.client.Version(e.ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Fatalf("latency not applied: %v", d)
	}
	e.sim.SetLatency(0)
}

func TestHoldLock(t *testing.T) {
	e := newEnv(t, Options{}, false)
	_, task, err := e.vm(t, "pve1", 9000).Clone(e.ctx, &proxmox.VirtualMachineCloneOptions{NewID: 100})
	e.ok(t)(task, err)
	vm := e.vm(t, "pve1", 100)

	if err := e.sim.HoldLock(100, "backup"); err != nil {
		t.Fatal(err)
	}
	e.fails(t, "VM is locked (backup)")(vm.Start(e.ctx))
	wantErr(t, vm.ConfigSync(e.ctx, proxmox.VirtualMachineOption{Name: "cores", Value: 3}), "VM is locked (backup)")
	_, err = vm.ResizeDisk(e.ctx, "scsi0", "+1G")
	wantErr(t, err, "VM is locked (backup)")
	e.fails(t, "VM is locked (backup)")(vm.Delete(e.ctx, nil))
	if err := vm.Ping(e.ctx); err != nil || vm.Lock != "backup" {
		t.Fatalf("lock not visible: %q %v", vm.Lock, err)
	}
	if r := e.resource(t, 100); r == nil {
		t.Fatal("locked VM vanished")
	}
	if err := e.sim.ReleaseLock(100); err != nil {
		t.Fatal(err)
	}
	e.ok(t)(vm.Start(e.ctx))
}

func TestCapacity(t *testing.T) {
	e := newEnv(t, Options{NodeMemory: 8 << 30, NodeStorage: 100 << 30}, false)
	n := e.node(t, "pve2")

	// Storage: the second 60G disk does not fit in 100G.
	e.ok(t)(n.NewVirtualMachine(e.ctx, 100, proxmox.VirtualMachineOption{Name: "scsi0", Value: "local-lvm:60"}))
	e.fails(t, "Volume group \"pve\" has insufficient free space")(n.NewVirtualMachine(e.ctx, 101, proxmox.VirtualMachineOption{Name: "scsi0", Value: "local-lvm:60"}))
	if _, ok := e.sim.Guest(101); ok {
		t.Fatal("failed create kept its config")
	}
	// A resize is checked with the disk it grows to: +50G does not fit
	// beside the 60G, +30G does (the check counts the guest's new size).
	grown := e.vm(t, "pve2", 100)
	// 40G were free: 10,240 extents, 12,800 needed.
	e.fails(t, "error resizing volume '/dev/pve/vm-100-disk-0':   Insufficient free space: 12800 extents needed, but only 10240 available")(grown.ResizeDisk(e.ctx, "scsi0", "+50G"))
	e.ok(t)(grown.ResizeDisk(e.ctx, "scsi0", "+30G"))
	e.fails(t, "insufficient free space")(n.NewVirtualMachine(e.ctx, 101, proxmox.VirtualMachineOption{Name: "scsi0", Value: "local-lvm:20"}))

	// Memory: 8G node minus 2G host overhead fits one 4G guest, not two.
	for _, id := range []int{102, 103} {
		e.ok(t)(n.NewVirtualMachine(e.ctx, id, proxmox.VirtualMachineOption{Name: "memory", Value: 4096}))
	}
	e.ok(t)(e.vm(t, "pve2", 102).Start(e.ctx))
	vm := e.vm(t, "pve2", 103)
	task := e.fails(t, "start failed: QEMU exited with code 1")(vm.Start(e.ctx))
	log, err := task.Log(e.ctx, 0, 50)
	if err != nil || !strings.Contains(log[0], "Cannot allocate memory") {
		t.Fatalf("log = %v %v", log, err)
	}
	if err := e.sim.SetNodeCapacity("pve2", 16<<30, 0); err != nil {
		t.Fatal(err)
	}
	e.ok(t)(vm.Start(e.ctx))

	// An exhausted node refuses creates and starts until restored.
	if err := e.sim.ExhaustNode("pve3"); err != nil {
		t.Fatal(err)
	}
	n3 := e.node(t, "pve3")
	e.fails(t, "insufficient free space")(n3.NewVirtualMachine(e.ctx, 104))
	_, task, err = e.vm(t, "pve1", 9000).Clone(e.ctx, &proxmox.VirtualMachineCloneOptions{NewID: 105, Target: "pve3"})
	e.fails(t, "insufficient free space")(task, err)
	if err := e.sim.RestoreNode("pve3"); err != nil {
		t.Fatal(err)
	}
	e.ok(t)(n3.NewVirtualMachine(e.ctx, 104))
	if err := e.sim.ExhaustNode("pve3"); err != nil {
		t.Fatal(err)
	}
	e.fails(t, "start failed")(e.vm(t, "pve3", 104).Start(e.ctx))
}

func TestOutOfBandChanges(t *testing.T) {
	e := newEnv(t, Options{}, false)
	_, task, err := e.vm(t, "pve1", 9000).Clone(e.ctx, &proxmox.VirtualMachineCloneOptions{NewID: 100})
	e.ok(t)(task, err)
	vm := e.vm(t, "pve1", 100)
	e.ok(t)(vm.Start(e.ctx))

	if err := e.sim.SetGuestStatus(100, StatusStopped); err != nil {
		t.Fatal(err)
	}
	if r := e.resource(t, 100); r.Status != "stopped" || r.Uptime != 0 {
		t.Fatalf("after out-of-band stop: %+v", r)
	}
	if err := e.sim.SetGuestStatus(100, StatusRunning); err != nil {
		t.Fatal(err)
	}
	if err := vm.Ping(e.ctx); err != nil || !vm.IsRunning() {
		t.Fatalf("after out-of-band start: %+v %v", vm, err)
	}

	if err := e.sim.DropGuest(100); err != nil {
		t.Fatal(err)
	}
	if r := e.resource(t, 100); r != nil {
		t.Fatalf("dropped guest still listed: %+v", r)
	}
	err = vm.Ping(e.ctx)
	wantErr(t, err, "Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist")
	_, err = vm.Stop(e.ctx)
	wantErr(t, err, "does not exist")
	if errors.Is(err, proxmox.ErrNotFound) {
		t.Fatal("unexpected sentinel")
	}
	if err := e.sim.DropGuest(100); err == nil {
		t.Fatal("dropping twice succeeded")
	}
}
