package pvesim

import (
	"testing"

	proxmox "github.com/luthermonson/go-proxmox"
)

func TestPools(t *testing.T) {
	e := newEnv(t, Options{}, false)
	if err := e.client.NewPool(e.ctx, "tenant-a", "Tenant A"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.client.NewPool(e.ctx, "tenant-a", ""), "pool 'tenant-a' already exists")
	wantErr(t, e.client.NewPool(e.ctx, "bad pool!", ""), "invalid pool ID")

	_, task, err := e.vm(t, "pve1", 9000).Clone(e.ctx, &proxmox.VirtualMachineCloneOptions{NewID: 100, Pool: "tenant-a"})
	e.ok(t)(task, err)
	_, _, err = e.vm(t, "pve1", 9000).Clone(e.ctx, &proxmox.VirtualMachineCloneOptions{NewID: 101, Pool: "nope"})
	wantErr(t, err, "pool 'nope' does not exist")

	pools, err := e.client.Pools(e.ctx)
	if err != nil || len(pools) != 1 || pools[0].PoolID != "tenant-a" || pools[0].Comment != "Tenant A" {
		t.Fatalf("pools = %+v %v", pools, err)
	}
	p, err := e.client.Pool(e.ctx, "tenant-a")
	if err != nil || len(p.Members) != 1 || p.Members[0].VMID != 100 || p.Members[0].Pool != "tenant-a" {
		t.Fatalf("pool = %+v %v", p, err)
	}
	if r := e.resource(t, 100); r.Pool != "tenant-a" {
		t.Fatalf("resource pool = %q", r.Pool)
	}
	wantErr(t, p.Delete(e.ctx), "pool 'tenant-a' is not empty")
	if err := p.Update(e.ctx, &proxmox.PoolUpdateOption{VirtualMachines: "100", Delete: true, Comment: "empty"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Update(e.ctx, &proxmox.PoolUpdateOption{VirtualMachines: "9001"}); err != nil {
		t.Fatal(err)
	}
	p, err = e.client.Pool(e.ctx, "tenant-a")
	if err != nil || len(p.Members) != 1 || p.Members[0].VMID != 9001 || p.Comment != "empty" {
		t.Fatalf("pool after update = %+v %v", p, err)
	}
	if err := p.Update(e.ctx, &proxmox.PoolUpdateOption{VirtualMachines: "9001", Delete: true}); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(e.ctx); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.Pool(e.ctx, "tenant-a")
	wantErr(t, err, "pool 'tenant-a' does not exist")
}
