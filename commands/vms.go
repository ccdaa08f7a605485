package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

func vmStream(id uuid.UUID) eventstore.StreamID {
	return eventstore.StreamID{Type: domain.StreamVM, ID: id}
}

// LoadVM rebuilds a VM of tenant from its events.
func (h *Handler) LoadVM(ctx context.Context, tenant, id uuid.UUID) (*domain.VM, error) {
	v := &domain.VM{ID: id, TenantID: tenant}
	if _, err := h.loadInto(ctx, tenant, vmStream(id), v); err != nil {
		return nil, err
	}
	return v, nil
}

// NewVM is what creating a VM takes.
type NewVM struct {
	TenantID  uuid.UUID
	Name      string
	Kind      domain.VMKind
	Spec      domain.VMSpec
	Template  string
	ClusterID uuid.UUID // optional: any cluster offering the template
}

// CreateVM requests a VM from a template. Its size counts against the
// tenant's quota from this moment, while it is still provisioning.
func (h *Handler) CreateVM(ctx context.Context, a Actor, o Options, nv NewVM) (Result, error) {
	id := uuid.Must(uuid.NewV7())
	if o.IdempotencyKey != "" {
		id = commandID(a, "vm:"+o.IdempotencyKey)
	}
	if err := h.tenantAcceptsCommands(ctx, nv.TenantID); err != nil {
		return Result{}, err
	}
	// Validate the request itself before looking the template up.
	if _, err := domain.RequestVM(nv.Name, nv.Kind, nv.Spec, nv.Template, nv.ClusterID, ""); err != nil {
		return Result{}, err
	}
	cluster, err := h.clusterOffering(ctx, nv.TenantID, nv.Template, string(nv.Kind), nv.ClusterID)
	if err != nil {
		return Result{}, err
	}
	events, err := domain.RequestVM(nv.Name, nv.Kind, nv.Spec, nv.Template, cluster, "")
	if err != nil {
		return Result{}, err
	}
	return h.onVM(ctx, a, o, nv.TenantID, id, true, func(*domain.VM) ([]domain.Event, error) { return events, nil })
}

// ActOnVM requests start, stop, shutdown, reboot or delete.
func (h *Handler) ActOnVM(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, action string) (Result, error) {
	return h.onVM(ctx, a, o, tenant, id, false, func(v *domain.VM) ([]domain.Event, error) { return v.Act(action) })
}

// ResizeVM requests a new size; growth counts against the quota at once.
func (h *Handler) ResizeVM(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, cores, memoryMB, diskGB *int) (Result, error) {
	return h.onVM(ctx, a, o, tenant, id, false, func(v *domain.VM) ([]domain.Event, error) { return v.Resize(cores, memoryMB, diskGB) })
}

// SnapshotVM requests a snapshot.
func (h *Handler) SnapshotVM(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, name string) (Result, error) {
	return h.onVM(ctx, a, o, tenant, id, false, func(v *domain.VM) ([]domain.Event, error) { return v.Snapshot(name) })
}

// onVM is load–decide–append for a VM, keeping tenant_usage in step: the
// change's effect on the VM's allocation is applied in the same transaction,
// and a growth beyond the tenant's quota rolls the whole command back.
func (h *Handler) onVM(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, create bool,
	decide func(*domain.VM) ([]domain.Event, error)) (Result, error) {
	if !create {
		if err := h.tenantAcceptsCommands(ctx, tenant); err != nil {
			return Result{}, err
		}
	}
	return h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		c, err := h.vmChange(ctx, tenant, id, decide)
		if err != nil {
			return change{}, err
		}
		if create && c.version != 0 {
			return change{}, fmt.Errorf("%w: the VM exists", domain.ErrConflict)
		}
		if !create && c.version == 0 {
			return change{}, domain.ErrNotFound
		}
		return c, nil
	})
}

// vmChange loads a VM, decides, and attaches the quota bookkeeping.
func (h *Handler) vmChange(ctx context.Context, tenant, id uuid.UUID, decide func(*domain.VM) ([]domain.Event, error)) (change, error) {
	v, err := h.LoadVM(ctx, tenant, id)
	if err != nil {
		return change{}, err
	}
	events, err := decide(v)
	if err != nil {
		return change{}, err
	}
	before := v.Allocated()
	after := *v
	for _, e := range events {
		after.Apply(e, h.now())
	}
	delta := usageDelta(before, after.Allocated())
	c := change{tenant: tenant, stream: vmStream(id), version: v.Version, events: events}
	if delta != (usage{}) {
		// The quota is read now, before the transaction: inside it, the
		// side write must use only its own connection, or concurrent
		// commands could exhaust the pool waiting for a second one.
		t, err := h.LoadTenant(ctx, tenant)
		if err != nil {
			return change{}, err
		}
		c.side = func(ctx context.Context, tx pgx.Tx) error { return applyUsage(ctx, tx, tenant, delta, t.Quota) }
		// Queue on the tenant's advisory lock before the first write, not on
		// the usage row after it: a transaction waiting with an id would
		// hold back the log's commit watermark, and with it event delivery
		// for every tenant.
		c.lockTenant = true
	}
	return c, nil
}

// usage is a change in a tenant's allocation.
type usage struct{ vms, cores, memoryMB, diskGB int }

func usageDelta(before, after domain.VMSpec) usage {
	count := func(s domain.VMSpec) int {
		if s == (domain.VMSpec{}) {
			return 0
		}
		return 1
	}
	return usage{count(after) - count(before), after.Cores - before.Cores, after.MemoryMB - before.MemoryMB, after.DiskGB - before.DiskGB}
}

// applyUsage adds delta to the tenant's usage. Growth is checked against the
// quota; the row lock serialises concurrent changes of one tenant.
func applyUsage(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, d usage, q domain.Quota) error {
	if _, err := tx.Exec(ctx, `INSERT INTO tenant_usage (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING`, tenant); err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `UPDATE tenant_usage SET vms = vms + $2, cores = cores + $3, memory_mb = memory_mb + $4, disk_gb = disk_gb + $5
		WHERE tenant_id = $1
		  AND ($2 <= 0 OR vms + $2 <= $6) AND ($3 <= 0 OR cores + $3 <= $7)
		  AND ($4 <= 0 OR memory_mb + $4 <= $8) AND ($5 <= 0 OR disk_gb + $5 <= $9)`,
		tenant, d.vms, d.cores, d.memoryMB, d.diskGB, q.MaxVMs, q.MaxCores, q.MaxMemoryMB, q.MaxDiskGB)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return quotaError(ctx, tx, tenant, d, q)
	}
	return nil
}

func quotaError(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, d usage, q domain.Quota) error {
	var u usage
	if err := tx.QueryRow(ctx, `SELECT vms, cores, memory_mb, disk_gb FROM tenant_usage WHERE tenant_id = $1`, tenant).
		Scan(&u.vms, &u.cores, &u.memoryMB, &u.diskGB); err != nil {
		return err
	}
	var over []string
	check := func(name string, used, add, limit int) {
		if add > 0 && used+add > limit {
			over = append(over, fmt.Sprintf("%s %d+%d > %d", name, used, add, limit))
		}
	}
	check("vms", u.vms, d.vms, q.MaxVMs)
	check("cores", u.cores, d.cores, q.MaxCores)
	check("memory_mb", u.memoryMB, d.memoryMB, q.MaxMemoryMB)
	check("disk_gb", u.diskGB, d.diskGB, q.MaxDiskGB)
	return fmt.Errorf("%w: %s", domain.ErrQuotaExceeded, strings.Join(over, ", "))
}

// clusterOffering finds the cluster whose inventory has the template (of the
// kind); with cluster set, only that one. An unknown template is a
// validation error naming the field.
func (h *Handler) clusterOffering(ctx context.Context, tenant uuid.UUID, template, kind string, cluster uuid.UUID) (uuid.UUID, error) {
	var found uuid.UUID
	err := tenantdb.ReadTx(ctx, h.pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT cluster_id FROM cluster_inventory, jsonb_array_elements(templates) t
			WHERE t->>'name' = $1 AND t->>'kind' = $2 AND ($3 = '00000000-0000-0000-0000-000000000000'::uuid OR cluster_id = $3)
			ORDER BY observed_at DESC LIMIT 1`, template, kind, cluster).Scan(&found)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, &domain.ValidationError{Fields: map[string]string{"template": "no " + kind + " template of that name on the clusters (see GET /v1/templates)"}}
	}
	return found, err
}
