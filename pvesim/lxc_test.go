package pvesim

import (
	"testing"

	proxmox "github.com/luthermonson/go-proxmox"
)

func TestContainerLifecycle(t *testing.T) {
	e := newEnv(t, Options{}, true)
	n := e.node(t, "pve2")

	_, err := n.NewContainer(e.ctx, 200, proxmox.ContainerOption{Name: "hostname", Value: "ct-1"})
	wantErr(t, err, `"ostemplate":"property is missing and it is not optional"`)
	_, err = n.NewContainer(e.ctx, 200, proxmox.ContainerOption{Name: "ostemplate", Value: "local:vztmpl/nope.tar.zst"})
	wantErr(t, err, "volume 'local:vztmpl/nope.tar.zst' does not exist")

	e.ok(t)(n.NewContainer(e.ctx, 200,
		proxmox.ContainerOption{Name: "ostemplate", Value: DefaultOSTemplates()[0]},
		proxmox.ContainerOption{Name: "hostname", Value: "ct-1"},
		proxmox.ContainerOption{Name: "memory", Value: 1024},
		proxmox.ContainerOption{Name: "rootfs", Value: "local-lvm:8"},
		proxmox.ContainerOption{Name: "net0", Value: "name=eth0,bridge=vmbr0,ip=dhcp"},
		proxmox.ContainerOption{Name: "tags", Value: "tenant-b"},
	))
	ct, err := n.Container(e.ctx, 200)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ct.ContainerConfig
	if ct.Name != "ct-1" || *cfg.Memory != 1024 || cfg.RootFS != "local-lvm:vm-200-disk-0,size=8G" || cfg.Tags != "tenant-b" {
		t.Fatalf("container = %+v cfg = %+v", ct, cfg)
	}

	e.ok(t)(ct.Start(e.ctx))
	_, err = ct.Start(e.ctx)
	wantErr(t, err, "CT 200 already running")
	if r := e.resource(t, 200); r == nil || r.Type != "lxc" || r.Status != "running" {
		t.Fatalf("resource = %+v", r)
	}
	e.ok(t)(ct.Reboot(e.ctx))
	e.ok(t)(ct.Shutdown(e.ctx, false, 30))
	_, err = ct.Stop(e.ctx)
	wantErr(t, err, "CT 200 not running")

	// LXC config updates are synchronous (PUT answers null).
	task, err := ct.Config(e.ctx, proxmox.ContainerOption{Name: "cores", Value: 2})
	if err != nil || task != nil {
		t.Fatalf("config: %v %v", task, err)
	}
	e.ok(t)(ct.Resize(e.ctx, "rootfs", "+4G"))
	e.ok(t)(ct.NewSnapshot(e.ctx, "s1"))
	snaps, err := ct.Snapshots(e.ctx)
	if err != nil || len(snaps) != 2 || snaps[0].Name != "s1" {
		t.Fatalf("snapshots = %v %v", snaps, err)
	}
	if err := ct.Ping(e.ctx); err != nil {
		t.Fatal(err)
	}
	ct, _ = n.Container(e.ctx, 200)
	if ct.ContainerConfig.Cores != 2 || ct.ContainerConfig.RootFS != "local-lvm:vm-200-disk-0,size=12G" {
		t.Fatalf("after update: %+v", ct.ContainerConfig)
	}
	e.ok(t)(ct.Delete(e.ctx, nil))
	_, err = n.Container(e.ctx, 200)
	wantErr(t, err, "Configuration file 'nodes/pve2/lxc/200.conf' does not exist")
}

func TestContainerClone(t *testing.T) {
	e := newEnv(t, Options{}, false)
	tmpl, err := e.node(t, "pve1").Container(e.ctx, 9100)
	if err != nil {
		t.Fatal(err)
	}
	newid, task, err := tmpl.Clone(e.ctx, &proxmox.ContainerCloneOptions{Hostname: "ct-clone", Target: "pve2"})
	e.ok(t)(task, err)
	if task.Type != "vzclone" {
		t.Fatalf("task type %s", task.Type)
	}
	ct, err := e.node(t, "pve2").Container(e.ctx, newid)
	if err != nil {
		t.Fatal(err)
	}
	if ct.Name != "ct-clone" || bool(ct.ContainerConfig.Template) || ct.ContainerConfig.RootFS != "local-lvm:base-9100-disk-0/vm-100-disk-0,size=4G" {
		t.Fatalf("clone = %+v %+v", ct, ct.ContainerConfig)
	}
	// A qemu path for a container id finds no qemu config, as in PVE.
	_, err = e.node(t, "pve2").VirtualMachine(e.ctx, newid)
	wantErr(t, err, "Configuration file 'nodes/pve2/qemu-server/100.conf' does not exist")
}
