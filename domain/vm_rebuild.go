package domain

import (
	"fmt"
	"slices"

	"github.com/google/uuid"
)

// Rebuild re-creates a VM's guest from a template on Proxmox: destroy,
// clone, configure (size and cloud-init), start. The VM keeps its id, name,
// size and cloud-init settings, and its Proxmox vmid when still free. Each
// step the agent finishes is recorded (VMRebuildProgressed), so the history
// shows how far a rebuild got; the agent itself finds where it stopped on
// Proxmox, not from these events.
type (
	VMRebuildRequested struct {
		Template  string     `json:"template"`
		Kind      VMKind     `json:"kind"`
		Name      string     `json:"name"`
		Spec      VMSpec     `json:"spec"`
		ClusterID uuid.UUID  `json:"cluster_id"`
		Node      string     `json:"node"`
		VMID      int        `json:"vmid"` // the guest's vmid now, reused when still free
		CloudInit *CloudInit `json:"cloud_init,omitempty"`
		// Network is the VM's pool address, which the new guest keeps.
		Network *VMNetwork `json:"network,omitempty"`
	}
	VMRebuildProgressed struct {
		Step   string `json:"step"` // RebuildSteps
		Node   string `json:"node,omitempty"`
		VMID   int    `json:"vmid,omitempty"`
		TaskID string `json:"task_id,omitempty"`
	}
	VMRebuilt struct {
		Template string `json:"template"`
		Node     string `json:"node"`
		VMID     int    `json:"vmid"`
		TaskID   string `json:"task_id"`
	}
)

func (VMRebuildRequested) EventType() string  { return "vm_rebuild_requested" }
func (VMRebuildProgressed) EventType() string { return "vm_rebuild_progressed" }
func (VMRebuilt) EventType() string           { return "vm_rebuilt" }

// The steps of a rebuild before its last (the start, which VMRebuilt records).
const (
	RebuildDestroyed  = "destroyed"
	RebuildCloned     = "cloned"
	RebuildConfigured = "configured"
)

// RebuildSteps are the recorded steps of a rebuild, in order.
var RebuildSteps = []string{RebuildDestroyed, RebuildCloned, RebuildConfigured}

// Rebuild requests the guest re-created from template ("" keeps the VM's).
// The caller checks that template exists for the VM's kind on its cluster.
func (v *VM) Rebuild(template string) ([]Event, error) {
	if err := v.allows(ActionRebuild); err != nil {
		return nil, err
	}
	if v.VMID == 0 {
		return nil, fmt.Errorf("%w: the VM was never provisioned; delete it and create another", ErrInvalidTransition)
	}
	if template == "" {
		template = v.Template
	}
	return []Event{&VMRebuildRequested{Template: template, Kind: v.Kind, Name: v.Name, Spec: v.Spec, ClusterID: v.ClusterID,
		Node: v.Node, VMID: v.VMID, CloudInit: v.CloudInit, Network: v.Network}}, nil
}

// RebuildStep records a step the agent reports for the pending rebuild,
// once: a step reported again (a resumed rebuild) or out of a rebuild
// records nothing.
func (v *VM) RebuildStep(step, node string, vmid int, taskID string) []Event {
	if !v.Exists() || v.Pending != ActionRebuild || !slices.Contains(RebuildSteps, step) || slices.Contains(v.RebuildDone, step) {
		return nil
	}
	return []Event{&VMRebuildProgressed{Step: step, Node: node, VMID: vmid, TaskID: taskID}}
}

// rebuilt is the success of the pending rebuild, placed where the agent
// says (or, if it did not say, where the VM was).
func (v *VM) rebuilt(taskID string, placed *VMProvisioned) Event {
	r := &VMRebuilt{Template: v.Template, Node: v.Node, VMID: v.VMID, TaskID: taskID}
	if placed != nil && placed.VMID != 0 {
		r.Node, r.VMID = placed.Node, placed.VMID
	}
	return r
}

// applyRebuild is VM.Apply's part for the rebuild events.
func (v *VM) applyRebuild(e Event) {
	switch e := e.(type) {
	case *VMRebuildRequested:
		v.Settled, v.Pending, v.Status = v.Status, ActionRebuild, VMProvisioning
		v.Template, v.RebuildDone = e.Template, nil
	case *VMRebuildProgressed:
		v.RebuildDone = append(slices.Clone(v.RebuildDone), e.Step)
		if e.VMID != 0 {
			v.Node, v.VMID = e.Node, e.VMID
		}
	case *VMRebuilt:
		v.Template, v.Node, v.VMID = e.Template, e.Node, e.VMID
		v.Status, v.Pending, v.LastError, v.RebuildDone = VMRunning, "", "", nil
		v.PendingChanges = false
		v.Snapshots, v.SnapshotParents, v.SnapshotParent = nil, nil, "" // the old guest's snapshots went with it
	}
}
