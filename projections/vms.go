package projections

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// VMs keeps the vms read model. Every VM event carries the whole effect on
// the row, so the projector replays the aggregate's own Apply on the stored
// state instead of re-deriving the status machine in SQL.
type VMs struct{}

var _ BatchApplier = VMs{}

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
	return applyVMEvents(ctx, tx, e.TenantID, []eventlog.Event{e})
}

// ApplyBatch implements BatchApplier: a tenant's events of a batch read
// each VM's row once and write it once (vm_rows.go). Rows are each one
// tenant's and read under its scope, as BatchApplier requires.
func (VMs) ApplyBatch(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, evs []eventlog.Event) error {
	return applyVMEvents(ctx, tx, tenant, evs)
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
