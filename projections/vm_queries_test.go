package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/projections"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// GET /v1/vms pages a tenant's VMs by keyset (created_at, vm_id): every VM
// once, in order, ties on created_at broken by vm_id, nothing of another
// tenant; and the service role's plan, row-level security included, walks
// vms_tenant_created and stops after the page instead of sorting the
// tenant's VMs (migrations/00043_vms_policy_estimates.sql).
func TestListVMsPagesByKeysetOnTheIndex(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	admin := db.AdminConn(t)
	mine, other := uuid.New(), uuid.New()
	// 2,000 VMs of mine, three to each created_at so ties need the vm_id
	// (a tenant big enough that sorting all of it for one page shows), and
	// 40 other tenants of 100 VMs.
	if _, err := admin.Exec(ctx, `INSERT INTO vms (tenant_id, vm_id, name, kind, cores, memory_mb, disk_gb, template, status, version, created_at, updated_at)
		SELECT $1, gen_random_uuid(), 'vm-' || g, 'qemu', 1, 512, 5, 'debian-12', 'running', 2,
			timestamptz '2026-01-01' + make_interval(mins => g / 3), now()
		FROM generate_series(1, 2000) g`, mine); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `INSERT INTO vms (tenant_id, vm_id, name, kind, cores, memory_mb, disk_gb, template, status, version, created_at, updated_at)
		SELECT t, gen_random_uuid(), 'vm-' || g, 'qemu', 1, 512, 5, 'debian-12', 'running', 2, timestamptz '2026-01-01' + make_interval(mins => g), now()
		FROM (SELECT CASE WHEN k = 0 THEN $1 ELSE gen_random_uuid() END t FROM generate_series(0, 39) k) tenants, generate_series(1, 100) g`, other); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `ANALYZE vms`); err != nil {
		t.Fatal(err)
	}
	var want []uuid.UUID
	rows, err := admin.Query(ctx, `SELECT vm_id FROM vms WHERE tenant_id = $1 ORDER BY created_at, vm_id`, mine)
	if err != nil {
		t.Fatal(err)
	}
	if want, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID]); err != nil || len(want) != 2000 {
		t.Fatalf("seeded %d VMs (%v)", len(want), err)
	}

	var got []uuid.UUID
	page := projections.Page{Limit: 50}
	for pages := 0; ; pages++ {
		vms, next, err := projections.ListVMs(ctx, db.App, mine, projections.VMFilter{}, page)
		if err != nil {
			t.Fatal(err)
		}
		if wantLen := min(50, 2000-len(got)); len(vms) != wantLen {
			t.Fatalf("page %d: %d VMs, want %d", pages, len(vms), wantLen)
		}
		for _, v := range vms {
			if v.TenantID != mine {
				t.Fatalf("page %d holds a VM of tenant %s", pages, v.TenantID)
			}
			got = append(got, v.ID)
		}
		if next == nil {
			break
		}
		page.After = next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages hold %d VMs, not the tenant's %d in (created_at, vm_id) order", len(got), len(want))
	}
	if _, err := projections.GetVM(ctx, db.App, mine, got[0]); err != nil {
		t.Fatal(err)
	}
	var theirs uuid.UUID
	if err := admin.QueryRow(ctx, `SELECT vm_id FROM vms WHERE tenant_id = $1 LIMIT 1`, other).Scan(&theirs); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.GetVM(ctx, db.App, mine, theirs); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("another tenant's VM: %v, want not found", err)
	}

	for _, after := range []projections.PageKey{{}, {CreatedAt: time.Date(2026, 1, 1, 5, 0, 0, 0, time.UTC), ID: want[900]}} {
		plan := explainAsTenant(t, db, mine, after)
		if !strings.Contains(plan, `"Index Name": "vms_tenant_created"`) || strings.Contains(plan, `"Node Type": "Sort"`) {
			t.Errorf("the list query after %v does not walk vms_tenant_created in order:\n%s", after, plan)
		}
	}
}

// explainAsTenant is the plan of projections.ListVMsSQL as the service
// role under a tenant's scope, in JSON.
func explainAsTenant(t *testing.T, db *pgtest.DB, tenant uuid.UUID, after projections.PageKey) string {
	t.Helper()
	var plan []byte
	err := tenantdb.Read(context.Background(), db.App, tenantdb.Tenant(tenant), func(b *pgx.Batch) {
		b.Queue(`EXPLAIN (FORMAT JSON) `+projections.ListVMsSQL, tenant, after.CreatedAt, after.ID, 51, "", "").
			QueryRow(func(r pgx.Row) error { return r.Scan(&plan) })
	})
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(plan, &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.MarshalIndent(v, "", " ")
	return string(out)
}
