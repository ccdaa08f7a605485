package projections

import (
	"context"
	"encoding/json"

	"github.com/accountdb/accountdb/domain"
	"github.com/jackc/pgx/v5"
)

// VMCloudInitView is what the vms read model shows of a VM's cloud-init:
// nothing secret (the password's hash stays in the events).
type VMCloudInitView struct {
	User               string   `json:"user"`
	Hostname           string   `json:"hostname"`
	SSHKeyFingerprints []string `json:"ssh_key_fingerprints"`
}

// vmAccessEvents are the VM events of cloud-init and rebuilds the vms
// projector applies besides the others.
var vmAccessEvents = []domain.Event{&domain.VMCloudInitUpdateRequested{}, &domain.VMRebuildRequested{},
	&domain.VMRebuildProgressed{}, &domain.VMRebuilt{}, &domain.VMCloudInitApplied{}}

// saveVMAccess writes the cloud_init, pending_changes and template columns
// for the events that change them; v is the VM after de. Each of those events
// fixes both values whatever the row held (a create or a configure carries
// the whole settings; a boot or a rebuild clears pending changes), so the
// columns need not be loaded back into the aggregate.
func saveVMAccess(ctx context.Context, tx pgx.Tx, v *domain.VM, de domain.Event) error {
	switch e := de.(type) {
	case *domain.VMCreateRequested:
		return writeVMAccess(ctx, tx, v, true)
	case *domain.VMActionSucceeded:
		switch e.Action {
		case domain.ActionConfigure:
			return writeVMAccess(ctx, tx, v, true)
		case domain.ActionStart, domain.ActionReboot:
			return writeVMAccess(ctx, tx, v, false)
		}
	case *domain.VMCloudInitApplied:
		return writeVMAccess(ctx, tx, v, false)
	case *domain.VMDriftDetected:
		if e.Observed == domain.VMRunning {
			return writeVMAccess(ctx, tx, v, false) // started by hand: booted
		}
	case *domain.VMRebuildRequested:
		return writeVMTemplate(ctx, tx, v)
	case *domain.VMRebuilt:
		if err := writeVMTemplate(ctx, tx, v); err != nil {
			return err
		}
		return writeVMAccess(ctx, tx, v, false)
	}
	return nil
}

// writeVMTemplate: a rebuild may change the template (saveVMRow keeps the
// one a VM was created from).
func writeVMTemplate(ctx context.Context, tx pgx.Tx, v *domain.VM) error {
	_, err := tx.Exec(ctx, `UPDATE vms SET template = $3 WHERE tenant_id = $1 AND vm_id = $2`, v.TenantID, v.ID, v.Template)
	return err
}

func writeVMAccess(ctx context.Context, tx pgx.Tx, v *domain.VM, withCloudInit bool) error {
	if !withCloudInit {
		_, err := tx.Exec(ctx, `UPDATE vms SET pending_changes = $3 WHERE tenant_id = $1 AND vm_id = $2`, v.TenantID, v.ID, v.PendingChanges)
		return err
	}
	var ci []byte
	if c := v.CloudInit; c != nil {
		var err error
		if ci, err = json.Marshal(VMCloudInitView{User: c.User, Hostname: c.Hostname, SSHKeyFingerprints: nonNil(c.SSHKeyFingerprints)}); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, `UPDATE vms SET cloud_init = $3, pending_changes = $4 WHERE tenant_id = $1 AND vm_id = $2`,
		v.TenantID, v.ID, ci, v.PendingChanges)
	return err
}
