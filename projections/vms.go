package projections

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/jackc/pgx/v5"
)

// VMs keeps the vms read model. Every VM event carries the whole effect on
// the row, so the projector replays the aggregate's own Apply on the stored
// state instead of re-deriving the status machine in SQL.
type VMs struct{}

var _ Projector = VMs{}

// Name implements Projector.
func (VMs) Name() string { return "vms" }

// Tables implements Projector.
func (VMs) Tables() []string { return []string{"vms"} }

// EventTypes implements Projector: every VM event changes the row (its
// version at least).
func (VMs) EventTypes() []string {
	return append(typesOf(&domain.VMCreateRequested{}, &domain.VMProvisioned{}, &domain.VMActionRequested{},
		&domain.VMResizeRequested{}, &domain.VMSnapshotRequested{}, &domain.VMActionSucceeded{},
		&domain.VMActionFailed{}, &domain.VMDriftDetected{}, &domain.VMOperationTimedOut{}, &domain.VMGuestAddressesReported{}), append(typesOf(vmAccessEvents...), typesOf(domain.VMBackupAndSnapshotEvents()...)...)...)
}

// Apply implements Projector.
func (VMs) Apply(ctx context.Context, tx pgx.Tx, e eventlog.Event) error {
	if e.Stream.Type != domain.StreamVM {
		return nil
	}
	de, err := domain.DecodeEvent(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("vms: %w", err)
	}
	v := &domain.VM{ID: e.Stream.ID, TenantID: e.TenantID}
	if _, isCreate := de.(*domain.VMCreateRequested); !isCreate {
		found, err := loadVMRow(ctx, tx, v)
		if err != nil || !found {
			return err // a VM's first event is always its create request
		}
	}
	v.Apply(de, e.RecordedAt)
	v.Version = e.StreamVersion
	if err := saveVMRow(ctx, tx, v); err != nil {
		return err
	}
	if err := saveVMAccess(ctx, tx, v, de); err != nil {
		return err
	}
	return saveVMNetwork(ctx, tx, v)
}

func loadVMRow(ctx context.Context, tx pgx.Tx, v *domain.VM) (bool, error) {
	var cores, mem, disk int
	err := tx.QueryRow(ctx, `SELECT name, kind, cores, memory_mb, disk_gb, template, coalesce(cluster_id, '00000000-0000-0000-0000-000000000000'),
		node, vmid, status, pending, settled, last_error, snapshots, version, created_at FROM vms WHERE tenant_id = $1 AND vm_id = $2`, v.TenantID, v.ID).
		Scan(&v.Name, &v.Kind, &cores, &mem, &disk, &v.Template, &v.ClusterID, &v.Node, &v.VMID, &v.Status, &v.Pending, &v.Settled, &v.LastError,
			&v.Snapshots, &v.Version, &v.CreatedAt)
	if err == pgx.ErrNoRows {
		return false, nil
	}
	v.Spec = domain.VMSpec{Cores: cores, MemoryMB: mem, DiskGB: disk}
	if err != nil {
		return false, err
	}
	return true, loadVMNetwork(ctx, tx, v)
}

func saveVMRow(ctx context.Context, tx pgx.Tx, v *domain.VM) error {
	_, err := tx.Exec(ctx, `INSERT INTO vms (tenant_id, vm_id, name, kind, cores, memory_mb, disk_gb, template, cluster_id, node, vmid,
			status, pending, settled, last_error, snapshots, version, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, nullif($9, '00000000-0000-0000-0000-000000000000'::uuid), $10, $11, $12, $13, $19, $14, $15, $16, $17, $18)
		ON CONFLICT (tenant_id, vm_id) DO UPDATE SET name = EXCLUDED.name, cores = EXCLUDED.cores, memory_mb = EXCLUDED.memory_mb,
			disk_gb = EXCLUDED.disk_gb, cluster_id = EXCLUDED.cluster_id, node = EXCLUDED.node, vmid = EXCLUDED.vmid,
			status = EXCLUDED.status, pending = EXCLUDED.pending, settled = EXCLUDED.settled, last_error = EXCLUDED.last_error, snapshots = EXCLUDED.snapshots,
			version = EXCLUDED.version, updated_at = EXCLUDED.updated_at`,
		v.TenantID, v.ID, v.Name, string(v.Kind), v.Spec.Cores, v.Spec.MemoryMB, v.Spec.DiskGB, v.Template, v.ClusterID, v.Node, v.VMID,
		string(v.Status), v.Pending, v.LastError, nonNil(v.Snapshots), v.Version, v.CreatedAt, v.UpdatedAt, string(v.Settled))
	return err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Clusters keeps the clusters read model (never the sealed secret).
type Clusters struct{}

var _ Projector = Clusters{}

// Name implements Projector.
func (Clusters) Name() string { return "clusters" }

// Tables implements Projector.
func (Clusters) Tables() []string { return []string{"clusters"} }

// EventTypes implements Projector.
func (Clusters) EventTypes() []string {
	return typesOf(&domain.ClusterRegistered{}, &domain.ClusterBackupStorageSet{})
}

// Apply implements Projector.
func (Clusters) Apply(ctx context.Context, tx pgx.Tx, e eventlog.Event) error {
	if e.Stream.Type != domain.StreamCluster {
		return nil
	}
	if e.Type == (domain.ClusterBackupStorageSet{}).EventType() {
		de, err := domain.DecodeEvent(e.Type, e.Data)
		if err != nil {
			return fmt.Errorf("clusters: %w", err)
		}
		_, err = tx.Exec(ctx, `UPDATE clusters SET backup_storage = $3 WHERE tenant_id = $1 AND cluster_id = $2`,
			e.TenantID, e.Stream.ID, de.(*domain.ClusterBackupStorageSet).Storage)
		return err
	}
	if e.Type != (domain.ClusterRegistered{}).EventType() {
		return nil
	}
	de, err := domain.DecodeEvent(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("clusters: %w", err)
	}
	c := de.(*domain.ClusterRegistered)
	_, err = tx.Exec(ctx, `INSERT INTO clusters (tenant_id, cluster_id, name, api_url, token_id, insecure_tls, tls_fingerprint, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
		e.TenantID, e.Stream.ID, c.Name, c.APIURL, c.TokenID, c.InsecureTLS, c.TLSFingerprint, e.RecordedAt)
	return err
}
