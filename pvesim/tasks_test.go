package pvesim

import (
	"strings"
	"testing"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

func TestTasksRunInBackground(t *testing.T) {
	e := newEnv(t, Options{TimeScale: 150 * time.Millisecond}, true)
	n := e.node(t, "pve1")
	task, err := n.NewVirtualMachine(e.ctx, 200,
		proxmox.VirtualMachineOption{Name: "name", Value: "slow"},
		proxmox.VirtualMachineOption{Name: "scsi0", Value: "local-lvm:4"})
	if err != nil {
		t.Fatal(err)
	}
	upid := string(task.UPID)
	parts := strings.Split(upid, ":")
	if len(parts) != 9 || parts[0] != "UPID" || parts[1] != "pve1" || len(parts[2]) != 8 || len(parts[3]) != 8 || len(parts[4]) != 8 || parts[5] != "qmcreate" || parts[6] != "200" || parts[7] != DefaultTokenID {
		t.Fatalf("UPID %q is not in PVE format", upid)
	}

	// While the worker runs, the guest exists with lock=create and refuses
	// other operations.
	if err := task.Ping(e.ctx); err != nil || !task.IsRunning || task.IsCompleted {
		t.Fatalf("task not running: %+v %v", task, err)
	}
	if r := e.resource(t, 200); r == nil || r.Status != "stopped" {
		t.Fatalf("guest missing during create: %+v", r)
	}
	vm := e.vm(t, "pve1", 200)
	if vm.Lock != "create" || vm.VirtualMachineConfig.Lock != "create" {
		t.Fatalf("lock during create = %q", vm.Lock)
	}
	err = vm.ConfigSync(e.ctx, proxmox.VirtualMachineOption{Name: "cores", Value: 2})
	wantErr(t, err, "can't lock file '/var/lock/qemu-server/lock-200.conf' - got timeout")
	_, err = e.client.Cluster(e.ctx)
	if err != nil {
		t.Fatal(err)
	}

	e.ok(t)(task, nil)
	if task.Duration < 0 || task.EndTime.Before(task.StartTime) {
		t.Fatalf("task times: %+v", task)
	}
	vm = e.vm(t, "pve1", 200)
	if vm.Lock != "" {
		t.Fatalf("lock after create = %q", vm.Lock)
	}
	log, err := task.Log(e.ctx, 0, 50)
	if err != nil || len(log) == 0 || log[len(log)-1] != "TASK OK" {
		t.Fatalf("log = %v, %v", log, err)
	}

	// Status flips only when the start worker ends.
	start, err := vm.Start(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.resource(t, 200); r.Status != "stopped" {
		t.Fatalf("status changed before the task ended: %s", r.Status)
	}
	e.ok(t)(start, nil)
	if r := e.resource(t, 200); r.Status != "running" {
		t.Fatalf("status after start task = %s", r.Status)
	}

	// Stopping a worker through the API fails it, like PVE's task stop.
	stop, err := vm.Stop(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stop.Stop(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.fails(t, "interrupted by signal")(stop, nil)
	if r := e.resource(t, 200); r.Status != "running" {
		t.Fatalf("interrupted stop changed status: %s", r.Status)
	}

	// Unknown tasks answer like PVE.
	bogus := proxmox.NewTask("UPID:pve1:00000001:00000001:00000001:qmstart:1:root@pam:", e.client)
	wantErr(t, bogus.Ping(e.ctx), "no such task")
}

func TestZeroTimeScaleFinishesBeforeFirstPoll(t *testing.T) {
	e := newEnv(t, Options{}, false)
	task, err := e.node(t, "pve2").NewVirtualMachine(e.ctx, 300)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Ping(e.ctx); err != nil || !task.IsCompleted || !task.IsSuccessful {
		t.Fatalf("task = %+v, %v", task, err)
	}
	if e.sim.RunningTasks() != 0 {
		t.Fatal("tasks still running")
	}
}
