package pvesim

import (
	"testing"

	proxmox "github.com/luthermonson/go-proxmox"
)

func TestVersionAndNodes(t *testing.T) {
	e := newEnv(t, Options{}, true)
	v, err := e.client.Version(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != DefaultVersion || v.Release != "8.2" {
		t.Fatalf("version = %+v", v)
	}
	ns, err := e.client.Nodes(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 3 || ns[0].Node != "pve1" || ns[2].Node != "pve3" || ns[0].MaxMem != DefaultNodeMemory || ns[0].Status != "online" {
		t.Fatalf("nodes = %+v", ns)
	}
	n := e.node(t, "pve2")
	if n.Memory.Total != DefaultNodeMemory || n.CPUInfo.CPUs != DefaultNodeCores || n.PVEVersion == "" {
		t.Fatalf("node status = %+v", n)
	}
	cl, err := e.client.Cluster(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Name != DefaultClusterName || cl.Quorate != 1 || len(cl.Nodes) != 3 || cl.Nodes[0].Status != "online" {
		t.Fatalf("cluster = %+v", cl)
	}
	if _, err := e.client.Node(e.ctx, "pve9"); err == nil {
		t.Fatal("unknown node answered")
	}
}

func TestTemplatesSeeded(t *testing.T) {
	e := newEnv(t, Options{}, false)
	vms, err := e.node(t, "pve1").VirtualMachines(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != 2 || vms[0].Name != "debian-12" || !bool(vms[0].Template) || vms[1].Name != "ubuntu-24.04" {
		t.Fatalf("vms = %+v", vms)
	}
	vm := e.vm(t, "pve1", 9000)
	if !bool(vm.VirtualMachineConfig.Template) || vm.VirtualMachineConfig.SCSIs["scsi0"] == "" || int(vm.VirtualMachineConfig.Memory) != 2048 {
		t.Fatalf("template config = %+v", vm.VirtualMachineConfig)
	}
	cts, err := e.node(t, "pve1").Containers(e.ctx)
	if err != nil || len(cts) != 1 || cts[0].Name != "debian-12-ct" {
		t.Fatalf("containers = %+v, %v", cts, err)
	}
}

func TestCreateStartStopDelete(t *testing.T) {
	e := newEnv(t, Options{}, true)
	cl, err := e.client.Cluster(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, err := cl.NextID(e.ctx)
	if err != nil || id != 100 {
		t.Fatalf("nextid = %d, %v", id, err)
	}
	n := e.node(t, "pve2")
	task, err := n.NewVirtualMachine(e.ctx, id,
		proxmox.VirtualMachineOption{Name: "name", Value: "web-1"},
		proxmox.VirtualMachineOption{Name: "cores", Value: 2},
		proxmox.VirtualMachineOption{Name: "memory", Value: 1024},
		proxmox.VirtualMachineOption{Name: "scsi0", Value: "local-lvm:16"},
		proxmox.VirtualMachineOption{Name: "net0", Value: "virtio,bridge=vmbr0"},
		proxmox.VirtualMachineOption{Name: "tags", Value: "tenant-a;accountdb"},
	)
	e.ok(t)(task, err)
	if task.Type != "qmcreate" || task.ID != "100" || task.Node != "pve2" || task.User != DefaultTokenID {
		t.Fatalf("task fields = %+v", task)
	}
	vm := e.vm(t, "pve2", id)
	cfg := vm.VirtualMachineConfig
	if vm.Name != "web-1" || *cfg.Cores != 2 || int(cfg.Memory) != 1024 || cfg.SCSIs["scsi0"] != "local-lvm:vm-100-disk-0,size=16G" {
		t.Fatalf("config = %+v scsi=%v", cfg, cfg.SCSIs)
	}
	if cfg.Tags != "accountdb;tenant-a" || !vm.HasTag("tenant-a") {
		t.Fatalf("tags = %q", cfg.Tags)
	}
	if vm.Status != "stopped" || vm.MaxMem != 1024<<20 {
		t.Fatalf("status = %+v", vm)
	}

	e.ok(t)(vm.Start(e.ctx))
	if err := vm.Ping(e.ctx); err != nil {
		t.Fatal(err)
	}
	if !vm.IsRunning() || vm.PID == 0 {
		t.Fatalf("after start: %+v", vm)
	}
	if r := e.resource(t, id); r == nil || r.Status != "running" || r.Node != "pve2" || r.Tags != "accountdb;tenant-a" {
		t.Fatalf("resource = %+v", r)
	}

	// Starting a running VM fails in the worker, like qm start does.
	e.fails(t, "VM 100 already running")(vm.Start(e.ctx))
	// A running VM cannot be destroyed.
	_, err = vm.Delete(e.ctx, nil)
	wantErr(t, err, "500 VM 100 is running - destroy failed")

	e.ok(t)(vm.Shutdown(e.ctx))
	if r := e.resource(t, id); r.Status != "stopped" {
		t.Fatalf("after shutdown: %+v", r)
	}
	// Stopping a stopped VM is a successful no-op in PVE.
	e.ok(t)(vm.Stop(e.ctx))

	e.ok(t)(vm.Delete(e.ctx, nil))
	if r := e.resource(t, id); r != nil {
		t.Fatalf("deleted vm still listed: %+v", r)
	}
	_, err = n.VirtualMachine(e.ctx, id)
	wantErr(t, err, "Configuration file 'nodes/pve2/qemu-server/100.conf' does not exist")
}
