package projections_test

import (
	"context"
	"testing"

	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/projections"
	"github.com/google/uuid"
)

// BenchmarkListVMs reads a page of 50 VMs of a tenant of 100, as
// GET /v1/vms does (figure 12 of the bench): the CPU and allocations a
// page costs the server, round trip included. The rows carry cloud-init,
// a pool address and a guest address, the columns scanVM decodes.
func BenchmarkListVMs(b *testing.B) {
	ctx := context.Background()
	db := pgtest.New(b)
	admin := db.AdminConn(b)
	tenant := uuid.New()
	if _, err := admin.Exec(ctx, `INSERT INTO vms (tenant_id, vm_id, name, kind, cores, memory_mb, disk_gb, template, cluster_id, node, vmid,
			status, version, created_at, updated_at, cloud_init, network, guest_addresses)
		SELECT $1, gen_random_uuid(), 'vm-' || g, 'qemu', 2, 2048, 20, 'debian-12', gen_random_uuid(), 'pve1', 100 + g, 'running', 2,
			timestamptz '2026-01-01' + make_interval(mins => g), now(),
			jsonb_build_object('user', 'debian', 'hostname', 'vm-' || g, 'ssh_key_fingerprints', jsonb_build_array('SHA256:abc')),
			jsonb_build_object('pool_id', gen_random_uuid(), 'ipv4', '10.0.0.' || g || '/24', 'gateway', '10.0.0.1', 'bridge', 'vmbr0'),
			ARRAY['10.0.0.' || g, 'fe80::1']
		FROM generate_series(1, 100) g`, tenant); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		vms, next, err := projections.ListVMs(ctx, db.App, tenant, projections.VMFilter{}, projections.Page{Limit: 50})
		if err != nil || len(vms) != 50 || next == nil {
			b.Fatalf("%d VMs, next %v: %v", len(vms), next, err)
		}
	}
}

// BenchmarkGetVM reads one VM by id, as GET /v1/vms/{id} does.
func BenchmarkGetVM(b *testing.B) {
	ctx := context.Background()
	db := pgtest.New(b)
	tenant, id := uuid.New(), uuid.New()
	if _, err := db.AdminConn(b).Exec(ctx, `INSERT INTO vms (tenant_id, vm_id, name, kind, cores, memory_mb, disk_gb, template, status, version,
			created_at, updated_at, cloud_init)
		VALUES ($1, $2, 'vm-1', 'qemu', 2, 2048, 20, 'debian-12', 'running', 2, now(), now(),
			'{"user": "debian", "hostname": "vm-1", "ssh_key_fingerprints": []}')`, tenant, id); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if v, err := projections.GetVM(ctx, db.App, tenant, id); err != nil || v.ID != id {
			b.Fatalf("%v: %v", v.ID, err)
		}
	}
}
