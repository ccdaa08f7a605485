package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// vmRow is a vms row in memory: every column the projector writes, so that
// a batch's events of one VM are applied to it one after another and the
// row is read once and written once per batch (issue 16: a VM event cost
// four or five statements). Each event still starts from exactly what the
// row holds (load), never from the aggregate left by the previous event,
// so the row comes out the same however the log is cut into batches: a
// live batch of one event, a rebuild's batch of 5,000.
type vmRow struct {
	found, dirty bool

	Name, Kind, Template          string
	Cores, MemoryMB, DiskGB, VMID int
	ClusterID                     uuid.UUID
	Node, Status, Pending         string
	Settled, LastError            string
	Snapshots, GuestAddresses     []string
	Version                       int64
	CreatedAt, UpdatedAt          time.Time
	Network, CloudInit            []byte // jsonb; nil is NULL
	PendingChanges                bool
}

// load gives v what the row holds; the other members of the aggregate are
// not kept (a VM event carries its whole effect on the row).
func (r *vmRow) load(v *domain.VM) error {
	v.Name, v.Kind, v.Template = r.Name, domain.VMKind(r.Kind), r.Template
	v.Spec = domain.VMSpec{Cores: r.Cores, MemoryMB: r.MemoryMB, DiskGB: r.DiskGB}
	v.ClusterID, v.Node, v.VMID = r.ClusterID, r.Node, r.VMID
	v.Status, v.Pending, v.Settled, v.LastError = domain.VMStatus(r.Status), r.Pending, domain.VMStatus(r.Settled), r.LastError
	v.Snapshots, v.Version, v.CreatedAt = slices.Clone(r.Snapshots), r.Version, r.CreatedAt
	v.GuestAddresses = slices.Clone(r.GuestAddresses)
	var err error
	v.Network, err = decodeNetwork(r.Network)
	return err
}

// save writes v to the row as the upsert always did: a new row takes
// everything, an existing one keeps its kind, template and creation time.
func (r *vmRow) save(v *domain.VM) {
	if !r.found {
		r.found = true
		r.Kind, r.Template, r.CreatedAt = string(v.Kind), v.Template, v.CreatedAt
		r.CloudInit, r.PendingChanges = nil, false // the columns' defaults
	}
	r.dirty = true
	r.Name, r.Cores, r.MemoryMB, r.DiskGB = v.Name, v.Spec.Cores, v.Spec.MemoryMB, v.Spec.DiskGB
	r.ClusterID, r.Node, r.VMID = v.ClusterID, v.Node, v.VMID
	r.Status, r.Pending, r.Settled, r.LastError = string(v.Status), v.Pending, string(v.Settled), v.LastError
	r.Snapshots, r.Version, r.UpdatedAt = slices.Clone(nonNil(v.Snapshots)), v.Version, v.UpdatedAt
}

// apply applies one event to the row, as Apply did with a statement for
// each step: a VM's first event is always its create request, so any other
// event of a VM without a row changes nothing.
func (r *vmRow) apply(e eventlog.Event, de domain.Event) error {
	v := &domain.VM{ID: e.Stream.ID, TenantID: e.TenantID}
	if _, isCreate := de.(*domain.VMCreateRequested); !isCreate {
		if !r.found {
			return nil
		}
		if err := r.load(v); err != nil {
			return err
		}
	}
	v.Apply(de, e.RecordedAt)
	v.Version = e.StreamVersion
	r.save(v)
	if err := r.saveAccess(v, de); err != nil {
		return err
	}
	return r.saveNetwork(v)
}

const vmRowColumns = `name, kind, cores, memory_mb, disk_gb, template, coalesce(cluster_id, '00000000-0000-0000-0000-000000000000'),
	node, vmid, status, pending, settled, last_error, snapshots, version, created_at, updated_at, network, guest_addresses,
	cloud_init, pending_changes`

// loadVMRows reads the rows of ids (one tenant's, under its scope) in one
// statement; a VM without a row is absent from the map.
func loadVMRows(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]*vmRow, error) {
	rows, err := tx.Query(ctx, `SELECT vm_id, `+vmRowColumns+` FROM vms WHERE tenant_id = $1 AND vm_id = ANY($2)`, tenant, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[uuid.UUID]*vmRow, len(ids))
	for rows.Next() {
		var id uuid.UUID
		r := &vmRow{found: true}
		if err := rows.Scan(&id, &r.Name, &r.Kind, &r.Cores, &r.MemoryMB, &r.DiskGB, &r.Template, &r.ClusterID, &r.Node, &r.VMID,
			&r.Status, &r.Pending, &r.Settled, &r.LastError, &r.Snapshots, &r.Version, &r.CreatedAt, &r.UpdatedAt, &r.Network,
			&r.GuestAddresses, &r.CloudInit, &r.PendingChanges); err != nil {
			return nil, err
		}
		out[id] = r
	}
	return out, rows.Err()
}

// applyVMEvents applies a tenant's VM events (in log order) to its vms
// rows: one read of every VM the events name, then each event in memory,
// then one write per changed VM.
func applyVMEvents(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, evs []eventlog.Event) error {
	var order []uuid.UUID
	seen := map[uuid.UUID]bool{}
	for _, e := range evs {
		if e.Stream.Type == domain.StreamVM && !seen[e.Stream.ID] {
			seen[e.Stream.ID] = true
			order = append(order, e.Stream.ID)
		}
	}
	if len(order) == 0 {
		return nil
	}
	rows, err := loadVMRows(ctx, tx, tenant, order)
	if err != nil {
		return fmt.Errorf("vms: load: %w", err)
	}
	for _, id := range order {
		if rows[id] == nil {
			rows[id] = &vmRow{}
		}
	}
	for _, e := range evs {
		if e.Stream.Type != domain.StreamVM {
			continue
		}
		de, err := domain.DecodeEvent(e.Type, e.Data)
		if err != nil {
			return fmt.Errorf("vms: %w", err)
		}
		if err := rows[e.Stream.ID].apply(e, de); err != nil {
			return fmt.Errorf("vms: event %d: %w", e.Position.GlobalPosition, err)
		}
	}
	return saveVMRows(ctx, tx, tenant, order, rows)
}

// marshalNetwork is the network column's value (nil: NULL).
func marshalNetwork(n *domain.VMNetwork) ([]byte, error) {
	if n == nil {
		return nil, nil
	}
	return json.Marshal(n)
}
