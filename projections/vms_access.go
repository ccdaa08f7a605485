package projections

import (
	"encoding/json"

	"github.com/accountdb/accountdb/domain"
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

// saveAccess sets the cloud_init, pending_changes and template columns
// for the events that change them; v is the VM after de. Each of those events
// fixes both values whatever the row held (a create or a configure carries
// the whole settings; a boot or a rebuild clears pending changes), so the
// columns need not be loaded back into the aggregate.
func (r *vmRow) saveAccess(v *domain.VM, de domain.Event) error {
	switch e := de.(type) {
	case *domain.VMCreateRequested:
		return r.saveCloudInit(v, true)
	case *domain.VMActionSucceeded:
		switch e.Action {
		case domain.ActionConfigure:
			return r.saveCloudInit(v, true)
		case domain.ActionStart, domain.ActionReboot:
			return r.saveCloudInit(v, false)
		}
	case *domain.VMCloudInitApplied:
		return r.saveCloudInit(v, false)
	case *domain.VMDriftDetected:
		if e.Observed == domain.VMRunning {
			return r.saveCloudInit(v, false) // started by hand: booted
		}
	case *domain.VMRebuildRequested:
		r.Template = v.Template // a rebuild may change it; save keeps the one a VM was created from
	case *domain.VMRebuilt:
		r.Template = v.Template
		return r.saveCloudInit(v, false)
	}
	return nil
}

func (r *vmRow) saveCloudInit(v *domain.VM, withCloudInit bool) error {
	r.PendingChanges = v.PendingChanges
	if !withCloudInit {
		return nil
	}
	r.CloudInit = nil
	if c := v.CloudInit; c != nil {
		ci, err := json.Marshal(VMCloudInitView{User: c.User, Hostname: c.Hostname, SSHKeyFingerprints: nonNil(c.SSHKeyFingerprints)})
		if err != nil {
			return err
		}
		r.CloudInit = ci
	}
	return nil
}
