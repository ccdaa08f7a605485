package agent

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/accountdb/accountdb/domain"
)

// TestOperationsCoverVMActions: the agent does something for every action
// of the domain's table, and for nothing else.
func TestOperationsCoverVMActions(t *testing.T) {
	for _, a := range domain.VMActions {
		if operations[a.Name] == nil {
			t.Errorf("no operation for %s", a.Name)
		}
	}
	for name := range operations {
		if _, ok := domain.LookupVMAction(name); !ok {
			t.Errorf("operation %s is no action of domain.VMActions", name)
		}
	}
}

// TestRequestNamingAnotherEventsActionFails: a vm_action_requested naming an
// action that has a request event of its own (or none at all) fails as an
// unknown action, without touching Proxmox.
func TestRequestNamingAnotherEventsActionFails(t *testing.T) {
	names := []string{"explode"}
	for _, a := range domain.VMActions {
		if a.RequestEvent != (&domain.VMActionRequested{}).EventType() {
			names = append(names, a.Name)
		}
	}
	for _, name := range names {
		req := request{EventID: uuid.New(), VMID: uuid.New(), Action: name, Body: &domain.VMActionRequested{Action: name}}
		r, err := (&Agent{}).execute(context.Background(), req)
		if err != nil || r.Succeeded || r.Error != `unknown action "`+name+`"` || r.Action != name {
			t.Errorf("%s: %+v %v", name, r, err)
		}
	}
}
