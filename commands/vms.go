package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
)

func vmStream(id uuid.UUID) eventlog.StreamID {
	return eventlog.StreamID{Type: domain.StreamVM, ID: id}
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
	CloudInit *CloudInitRequest
	// IPPoolID names the pool the VM's address comes from (optional: the
	// cluster's default pool, if it has one; see vm_network.go).
	IPPoolID uuid.UUID
}

// CreateVM requests a VM from a template. Its size counts against the
// tenant's quota from this moment, while it is still provisioning. The
// tenant is loaded once: whether it accepts commands and the quota the VM
// must fit are decided on the same state.
func (h *Handler) CreateVM(ctx context.Context, a Actor, o Options, nv NewVM) (Result, error) {
	for attempt := 0; ; attempt++ {
		res, err := h.createVMOnce(ctx, a, o, nv, attempt > 0)
		if !errors.Is(err, errStaleTenant) {
			return res, err
		}
		if attempt == staleTenantRetries {
			return Result{}, staleTenantConflict()
		}
	}
}

// createVMOnce decides and commits a create; fresh reads the tenant
// afresh rather than from the cache (the create's group found the cached
// one stale).
func (h *Handler) createVMOnce(ctx context.Context, a Actor, o Options, nv NewVM, fresh bool) (Result, error) {
	id := uuid.Must(uuid.NewV7())
	if o.IdempotencyKey != "" {
		id = commandID(a, "vm:"+o.IdempotencyKey)
	}
	if h.tables == nil {
		return Result{}, ErrNoTables
	}
	// The tenant comes from the cache or its stream is read while the
	// request is decided and its template, cluster and pool are looked up:
	// none depends on another, and a POST used to wait for each in turn
	// (issue 16). A tenant that refuses commands is still the answer
	// before anything else.
	tenant := h.openTenantForCreate(ctx, nv.TenantID, fresh)
	fail := func(err error) (Result, error) {
		if _, terr := tenant(); terr != nil {
			return Result{}, terr
		}
		return Result{}, err
	}
	// Decide on the request itself before looking the template up; the
	// cluster the lookup finds is where the request is placed.
	ci, ciErr := h.newCloudInit(ctx, a, nv.Kind, nv.Name, nv.CloudInit)
	events, err := domain.RequestVM(nv.Name, nv.Kind, nv.Spec, nv.Template, nv.ClusterID, "", ci)
	if err = mergeValidation(err, ciErr); err != nil {
		return fail(err)
	}
	if nv.ClusterID, err = h.poolCluster(ctx, nv.IPPoolID, nv.ClusterID); err != nil {
		return fail(err)
	}
	poolOf := h.vmPoolAhead(ctx, nv.IPPoolID, nv.ClusterID, offerKey{nv.Template, string(nv.Kind)})
	cluster, found, err := h.tables.Inventory().ClusterOffering(ctx, nv.TenantID, nv.Template, string(nv.Kind), nv.ClusterID)
	if err != nil {
		return fail(err)
	}
	if !found {
		return fail(&domain.ValidationError{Fields: map[string]string{"template": "no " + string(nv.Kind) + " template of that name on the clusters (see GET /v1/templates)"}})
	}
	if nv.Kind == domain.KindLXC && ci != nil && (len(ci.SSHKeys) > 0 || ci.PasswordHash != "") {
		os, err := h.tables.Inventory().IsOSTemplate(ctx, nv.TenantID, nv.Template, cluster)
		if err != nil {
			return fail(err)
		}
		if !os {
			return fail(domain.CloudInitNeedsOSTemplate(ci))
		}
	}
	events[0].(*domain.VMCreateRequested).ClusterID = cluster
	return h.createVM(ctx, a, o, tenant, id, poolOf, events)
}

// ActOnVM requests start, stop, shutdown, reboot or delete.
func (h *Handler) ActOnVM(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, action string) (Result, error) {
	return h.onOpenTenantVM(ctx, a, o, tenant, id, func(v *domain.VM) ([]domain.Event, error) { return v.Act(action) })
}

// ResizeVM requests a new size; growth counts against the quota at once.
func (h *Handler) ResizeVM(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID, cores, memoryMB, diskGB *int) (Result, error) {
	return h.onOpenTenantVM(ctx, a, o, tenant, id, func(v *domain.VM) ([]domain.Event, error) { return v.Resize(cores, memoryMB, diskGB) })
}

// onOpenTenantVM is onVM for an existing VM of a tenant that accepts
// commands.
func (h *Handler) onOpenTenantVM(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID,
	decide func(*domain.VM) ([]domain.Event, error)) (Result, error) {
	t, err := h.openTenant(ctx, tenant)
	if err != nil {
		return Result{}, err
	}
	return h.onVM(ctx, a, o, t, id, false, decide)
}

// onVM is load–decide–append for a VM of tenant t, keeping tenant_usage in
// step: the change's effect on the VM's allocation is applied in the same
// transaction, and a growth beyond t's quota rolls the whole command back.
func (h *Handler) onVM(ctx context.Context, a Actor, o Options, t *domain.Tenant, id uuid.UUID, create bool,
	decide func(*domain.VM) ([]domain.Event, error)) (Result, error) {
	return h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		c, err := h.vmChange(ctx, t.ID, id, t, decide)
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

// vmChange loads a VM, decides, and attaches the quota bookkeeping. t is the
// tenant whose quota applies, or nil to load it if the change needs it.
func (h *Handler) vmChange(ctx context.Context, tenant, id uuid.UUID, t *domain.Tenant,
	decide func(*domain.VM) ([]domain.Event, error)) (change, error) {
	v, err := h.LoadVM(ctx, tenant, id)
	if err != nil {
		return change{}, err
	}
	return h.vmChangeOn(ctx, v, t, decide)
}

// vmChangeOn is vmChange on v as loaded (or known to be new).
func (h *Handler) vmChangeOn(ctx context.Context, v *domain.VM, t *domain.Tenant,
	decide func(*domain.VM) ([]domain.Event, error)) (change, error) {
	tenant, id := v.TenantID, v.ID
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
	delta.IPv4 = after.HeldIPv4() - v.HeldIPv4()
	c := change{tenant: tenant, stream: vmStream(id), version: v.Version, events: events}
	if err := h.releaseAddress(ctx, v, &after, &c); err != nil {
		return change{}, err
	}
	if delta != (Usage{}) {
		// The quota is read before the transaction: inside it, the side
		// write must use only its own connection, or concurrent commands
		// could exhaust the pool waiting for a second one.
		if t == nil {
			if t, err = h.LoadTenant(ctx, tenant); err != nil {
				return change{}, err
			}
		}
		quota := t.Quota
		c.delta, c.quota = delta, quota
		c.side = func(ctx context.Context, tx TxTables) error { return applyUsage(ctx, tx.Usage(), tenant, delta, quota) }
		// Queue on the tenant's lock before the first write, not on the
		// usage row after it: a transaction waiting with an id would hold
		// back the log's commit watermark, and with it event delivery for
		// every tenant.
		c.lockTenant = true
	}
	return c, nil
}

// Plus is u with d added.
func (u Usage) Plus(d Usage) Usage {
	return Usage{VMs: u.VMs + d.VMs, Cores: u.Cores + d.Cores, MemoryMB: u.MemoryMB + d.MemoryMB, DiskGB: u.DiskGB + d.DiskGB, IPv4: u.IPv4 + d.IPv4}
}

func usageDelta(before, after domain.VMSpec) Usage {
	count := func(s domain.VMSpec) int {
		if s == (domain.VMSpec{}) {
			return 0
		}
		return 1
	}
	return Usage{VMs: count(after) - count(before), Cores: after.Cores - before.Cores, MemoryMB: after.MemoryMB - before.MemoryMB,
		DiskGB: after.DiskGB - before.DiskGB}
}

// applyUsage adds d to the tenant's usage; a growth past the quota q is
// ErrQuotaExceeded, naming what would overflow.
func applyUsage(ctx context.Context, w UsageWriter, tenant uuid.UUID, d Usage, q domain.Quota) error {
	applied, err := w.Add(ctx, tenant, d, q)
	if err != nil || applied {
		return err
	}
	u, _, err := w.CurrentAt(ctx, tenant)
	if err != nil {
		return err
	}
	if err := overQuota(u, d, q); err != nil {
		return err
	}
	// Not applied, yet it fits what the row says now: the row changed in
	// between, which the tenant's lock rules out; refuse rather than count
	// nothing.
	return fmt.Errorf("%w: the tenant's usage changed meanwhile", domain.ErrQuotaExceeded)
}

// overQuota is ErrQuotaExceeded, naming what would overflow, when adding d
// to u grows it past q; nil when it fits.
func overQuota(u, d Usage, q domain.Quota) error {
	var over []string
	check := func(name string, used, add, limit int) {
		if add > 0 && used+add > limit {
			over = append(over, fmt.Sprintf("%s %d+%d > %d", name, used, add, limit))
		}
	}
	check("vms", u.VMs, d.VMs, q.MaxVMs)
	check("cores", u.Cores, d.Cores, q.MaxCores)
	check("memory_mb", u.MemoryMB, d.MemoryMB, q.MaxMemoryMB)
	check("disk_gb", u.DiskGB, d.DiskGB, q.MaxDiskGB)
	check("ipv4", u.IPv4, d.IPv4, q.IPv4Limit())
	if len(over) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", domain.ErrQuotaExceeded, strings.Join(over, ", "))
}
