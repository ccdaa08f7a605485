package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
)

// VMSnapshots keeps the vm_snapshots read model: each VM's snapshots with
// their parent (the tree Proxmox keeps), description, time and whether RAM
// was saved. A snapshot is listed from its request (status creating) and
// ready once taken; a failed one is dropped. A guest destroyed (the VM
// deleted or rebuilt) or replaced by a restore has none left.
type VMSnapshots struct{}

var _ Projector = VMSnapshots{}

// Name implements Projector.
func (VMSnapshots) Name() string { return "vm_snapshots" }

// Tables implements Projector.
func (VMSnapshots) Tables() []string { return []string{"vm_snapshots"} }

// EventTypes implements Projector.
func (VMSnapshots) EventTypes() []string {
	return typesOf(&domain.VMSnapshotRequested{}, &domain.VMActionSucceeded{}, &domain.VMActionFailed{},
		&domain.VMOperationTimedOut{}, &domain.VMSnapshotDeleted{}, &domain.VMRestored{}, &domain.VMRebuilt{})
}

// Apply implements Projector.
func (VMSnapshots) Apply(ctx context.Context, tx pgx.Tx, e eventlog.Event) error {
	if e.Stream.Type != domain.StreamVM {
		return nil
	}
	de, err := domain.DecodeEvent(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("vm_snapshots: %w", err)
	}
	dropCreating := `DELETE FROM vm_snapshots WHERE tenant_id = $1 AND vm_id = $2 AND status = 'creating'`
	dropAll := `DELETE FROM vm_snapshots WHERE tenant_id = $1 AND vm_id = $2`
	switch ev := de.(type) {
	case *domain.VMSnapshotRequested:
		_, err = tx.Exec(ctx, `INSERT INTO vm_snapshots (tenant_id, vm_id, name, parent, description, vmstate, status, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, 'creating', $7)
			ON CONFLICT (tenant_id, vm_id, name) DO UPDATE SET parent = EXCLUDED.parent, description = EXCLUDED.description,
				vmstate = EXCLUDED.vmstate, status = 'creating', created_at = EXCLUDED.created_at`,
			e.TenantID, e.Stream.ID, ev.Name, ev.Parent, ev.Description, ev.VMState, e.RecordedAt)
	case *domain.VMActionSucceeded:
		switch ev.Action {
		case domain.ActionSnapshot:
			_, err = tx.Exec(ctx, `UPDATE vm_snapshots SET status = 'ready', created_at = $4
				WHERE tenant_id = $1 AND vm_id = $2 AND name = $3`, e.TenantID, e.Stream.ID, ev.Snapshot, e.RecordedAt)
		case domain.ActionDelete:
			_, err = tx.Exec(ctx, dropAll, e.TenantID, e.Stream.ID)
		}
	case *domain.VMActionFailed:
		if ev.Action == domain.ActionSnapshot {
			_, err = tx.Exec(ctx, dropCreating, e.TenantID, e.Stream.ID)
		}
	case *domain.VMOperationTimedOut:
		if ev.Action == domain.ActionSnapshot {
			_, err = tx.Exec(ctx, dropCreating, e.TenantID, e.Stream.ID)
		}
	case *domain.VMSnapshotDeleted:
		if _, err = tx.Exec(ctx, `UPDATE vm_snapshots SET parent = $4 WHERE tenant_id = $1 AND vm_id = $2 AND parent = $3`,
			e.TenantID, e.Stream.ID, ev.Name, ev.Parent); err == nil {
			_, err = tx.Exec(ctx, `DELETE FROM vm_snapshots WHERE tenant_id = $1 AND vm_id = $2 AND name = $3`, e.TenantID, e.Stream.ID, ev.Name)
		}
	case *domain.VMRestored, *domain.VMRebuilt:
		_, err = tx.Exec(ctx, dropAll, e.TenantID, e.Stream.ID)
	}
	return err
}
