package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// upsertVMRowsSQL writes a batch's rows in one statement. The two text[]
// columns come as JSON arrays ($16, $20): unnest cannot take an array of
// arrays of different lengths.
const upsertVMRowsSQL = `INSERT INTO vms (tenant_id, vm_id, name, kind, cores, memory_mb, disk_gb, template, cluster_id, node, vmid,
		status, pending, settled, last_error, snapshots, version, created_at, updated_at, network, guest_addresses, cloud_init, pending_changes)
	SELECT $1, u.vm_id, u.name, u.kind, u.cores, u.memory_mb, u.disk_gb, u.template,
		nullif(u.cluster_id, '00000000-0000-0000-0000-000000000000'::uuid), u.node, u.vmid, u.status, u.pending, u.settled, u.last_error,
		ARRAY(SELECT a FROM jsonb_array_elements_text(u.snapshots::jsonb) WITH ORDINALITY AS x(a, i) ORDER BY i), u.version, u.created_at, u.updated_at, u.network::jsonb,
		ARRAY(SELECT a FROM jsonb_array_elements_text(u.guest_addresses::jsonb) WITH ORDINALITY AS x(a, i) ORDER BY i), u.cloud_init::jsonb, u.pending_changes
	FROM unnest($2::uuid[], $3::text[], $4::text[], $5::int[], $6::int[], $7::int[], $8::text[], $9::uuid[], $10::text[], $11::int[],
		$12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::bigint[], $18::timestamptz[], $19::timestamptz[],
		$20::text[], $21::text[], $22::text[], $23::bool[])
		AS u(vm_id, name, kind, cores, memory_mb, disk_gb, template, cluster_id, node, vmid, status, pending, settled, last_error,
			snapshots, version, created_at, updated_at, network, guest_addresses, cloud_init, pending_changes)
	ON CONFLICT (tenant_id, vm_id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, cores = EXCLUDED.cores,
		memory_mb = EXCLUDED.memory_mb, disk_gb = EXCLUDED.disk_gb, template = EXCLUDED.template, cluster_id = EXCLUDED.cluster_id,
		node = EXCLUDED.node, vmid = EXCLUDED.vmid, status = EXCLUDED.status, pending = EXCLUDED.pending, settled = EXCLUDED.settled,
		last_error = EXCLUDED.last_error, snapshots = EXCLUDED.snapshots, version = EXCLUDED.version, created_at = EXCLUDED.created_at,
		updated_at = EXCLUDED.updated_at, network = EXCLUDED.network, guest_addresses = EXCLUDED.guest_addresses,
		cloud_init = EXCLUDED.cloud_init, pending_changes = EXCLUDED.pending_changes`

// vmRowColumnsOf are a batch's changed rows column by column, for unnest.
type vmRowColumnsOf struct {
	ids                                      []uuid.UUID
	names, kinds, templates, nodes           []string
	statuses, pendings, settleds, lastErrors []string
	cores, mem, disk, vmids                  []int32
	clusters                                 []uuid.UUID
	snapshots, guestAddresses                []string // JSON arrays
	versions                                 []int64
	created, updated                         []time.Time
	networks, cloudInits                     []*string // jsonb; nil is NULL
	pendingChanges                           []bool
}

func (c *vmRowColumnsOf) add(id uuid.UUID, r *vmRow) error {
	snaps, err := json.Marshal(nonNil(r.Snapshots))
	if err != nil {
		return err
	}
	guest, err := json.Marshal(nonNil(r.GuestAddresses))
	if err != nil {
		return err
	}
	c.ids, c.names, c.kinds, c.templates = append(c.ids, id), append(c.names, r.Name), append(c.kinds, r.Kind), append(c.templates, r.Template)
	c.cores, c.mem, c.disk = append(c.cores, int32(r.Cores)), append(c.mem, int32(r.MemoryMB)), append(c.disk, int32(r.DiskGB))
	c.clusters, c.nodes, c.vmids = append(c.clusters, r.ClusterID), append(c.nodes, r.Node), append(c.vmids, int32(r.VMID))
	c.statuses, c.pendings, c.settleds = append(c.statuses, r.Status), append(c.pendings, r.Pending), append(c.settleds, r.Settled)
	c.lastErrors, c.snapshots, c.versions = append(c.lastErrors, r.LastError), append(c.snapshots, string(snaps)), append(c.versions, r.Version)
	c.created, c.updated = append(c.created, r.CreatedAt), append(c.updated, r.UpdatedAt)
	c.networks, c.guestAddresses = append(c.networks, jsonText(r.Network)), append(c.guestAddresses, string(guest))
	c.cloudInits, c.pendingChanges = append(c.cloudInits, jsonText(r.CloudInit)), append(c.pendingChanges, r.PendingChanges)
	return nil
}

func jsonText(raw []byte) *string {
	if raw == nil {
		return nil
	}
	s := string(raw)
	return &s
}

// saveVMRows writes every row the batch changed, in one statement.
func saveVMRows(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, order []uuid.UUID, rows map[uuid.UUID]*vmRow) error {
	var c vmRowColumnsOf
	for _, id := range order {
		if r := rows[id]; r.dirty {
			if err := c.add(id, r); err != nil {
				return err
			}
		}
	}
	if len(c.ids) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, upsertVMRowsSQL, tenant, c.ids, c.names, c.kinds, c.cores, c.mem, c.disk, c.templates, c.clusters,
		c.nodes, c.vmids, c.statuses, c.pendings, c.settleds, c.lastErrors, c.snapshots, c.versions, c.created, c.updated,
		c.networks, c.guestAddresses, c.cloudInits, c.pendingChanges); err != nil {
		return fmt.Errorf("vms: save: %w", err)
	}
	return nil
}
