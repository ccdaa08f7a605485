package domain

import (
	"fmt"
	"maps"
	"slices"
)

// Snapshots of a VM, whole: taken (VMSnapshotRequested, then a
// vm_action_succeeded naming it), rolled back and deleted. Proxmox keeps
// them as a tree: a new snapshot's parent is the one the guest was last
// taken or rolled back to ("current" in Proxmox's list), and deleting one
// re-parents its children to its own parent. The VM aggregate keeps that
// tree's current node so a request can say its parent.

// The snapshot actions beyond taking one (vm_actions.go lists them).
const (
	ActionSnapshotRollback = "snapshot_rollback"
	ActionSnapshotDelete   = "snapshot_delete"
)

// DefaultMaxSnapshotsPerVM applies to a tenant whose quota does not set
// max_snapshots_per_vm.
const DefaultMaxSnapshotsPerVM = 10

// SnapshotLimit is how many snapshots one of the tenant's VMs may hold.
func (q Quota) SnapshotLimit() int {
	if q.MaxSnapshotsPerVM > 0 {
		return q.MaxSnapshotsPerVM
	}
	return DefaultMaxSnapshotsPerVM
}

type (
	// VMSnapshotRollbackRequested asks for the guest rolled back to Name.
	VMSnapshotRollbackRequested struct {
		Name string `json:"name"`
	}
	// VMSnapshotRolledBack: the guest is as it was at snapshot Name, and
	// Status is its power state after (running only if RAM was saved).
	VMSnapshotRolledBack struct {
		Name   string   `json:"name"`
		TaskID string   `json:"task_id,omitempty"`
		Status VMStatus `json:"status"`
	}
	// VMSnapshotDeleteRequested asks for snapshot Name removed.
	VMSnapshotDeleteRequested struct {
		Name string `json:"name"`
	}
	// VMSnapshotDeleted: snapshot Name is gone; its children now hang from
	// Parent.
	VMSnapshotDeleted struct {
		Name   string `json:"name"`
		Parent string `json:"parent,omitempty"`
		TaskID string `json:"task_id,omitempty"`
	}
)

func (VMSnapshotRollbackRequested) EventType() string { return "vm_snapshot_rollback_requested" }
func (VMSnapshotRolledBack) EventType() string        { return "vm_snapshot_rolled_back" }
func (VMSnapshotDeleteRequested) EventType() string   { return "vm_snapshot_delete_requested" }
func (VMSnapshotDeleted) EventType() string           { return "vm_snapshot_deleted" }

// vmSnapshotEvents are the events of rollbacks and deletions.
var vmSnapshotEvents = []func() Event{
	func() Event { return &VMSnapshotRollbackRequested{} },
	func() Event { return &VMSnapshotRolledBack{} },
	func() Event { return &VMSnapshotDeleteRequested{} },
	func() Event { return &VMSnapshotDeleted{} },
}

// SnapshotOptions are what a snapshot request may say beyond its name.
type SnapshotOptions struct {
	Description string
	// VMState saves the RAM of a running QEMU guest with the disks, so a
	// rollback resumes it running.
	VMState bool
}

// TakeSnapshot requests a snapshot with a PVE-valid name, within the
// tenant's limit of snapshots per VM.
func (v *VM) TakeSnapshot(name string, opts SnapshotOptions, q Quota) ([]Event, error) {
	if len(opts.Description) > 8192 {
		return nil, &ValidationError{Fields: map[string]string{"description": "at most 8192 bytes"}}
	}
	if !ValidText(opts.Description) {
		return nil, &ValidationError{Fields: map[string]string{"description": InvalidTextMessage}}
	}
	if opts.VMState && v.Kind != KindQEMU {
		return nil, &ValidationError{Fields: map[string]string{"vmstate": "only a QEMU virtual machine's RAM can be saved"}}
	}
	events, err := v.Snapshot(name)
	if err != nil {
		return nil, err
	}
	if n := len(v.Snapshots); n >= q.SnapshotLimit() {
		return nil, fmt.Errorf("%w: snapshots_per_vm %d+1 > %d", ErrQuotaExceeded, n, q.SnapshotLimit())
	}
	r := events[0].(*VMSnapshotRequested)
	r.Description, r.Parent = opts.Description, v.SnapshotParent
	r.VMState = opts.VMState && v.Status == VMRunning
	return events, nil
}

// RollbackSnapshot requests the guest rolled back to snapshot name.
func (v *VM) RollbackSnapshot(name string) ([]Event, error) {
	if err := v.knownSnapshot(name, ActionSnapshotRollback); err != nil {
		return nil, err
	}
	return []Event{&VMSnapshotRollbackRequested{Name: name}}, nil
}

// DeleteSnapshot requests snapshot name removed.
func (v *VM) DeleteSnapshot(name string) ([]Event, error) {
	if err := v.knownSnapshot(name, ActionSnapshotDelete); err != nil {
		return nil, err
	}
	return []Event{&VMSnapshotDeleteRequested{Name: name}}, nil
}

func (v *VM) knownSnapshot(name, action string) error {
	if !v.Exists() {
		return ErrNotFound
	}
	if !slices.Contains(v.Snapshots, name) {
		return fmt.Errorf("%w: no snapshot %q", ErrNotFound, name)
	}
	return v.allows(action)
}

// snapshotResult is the result event of a successful rollback or
// deletion; status is the guest's power state the agent saw after it.
func (v *VM) snapshotResult(action, name, taskID string, status VMStatus) Event {
	if action == ActionSnapshotRollback {
		if status != VMRunning {
			status = VMStopped
		}
		return &VMSnapshotRolledBack{Name: name, TaskID: taskID, Status: status}
	}
	return &VMSnapshotDeleted{Name: name, Parent: v.SnapshotParents[name], TaskID: taskID}
}

// applySnapshots is VM.Apply's part for the snapshot events.
func (v *VM) applySnapshots(e Event) {
	switch e := e.(type) {
	case *VMSnapshotRequested:
		v.Settled, v.Pending = v.Status, ActionSnapshot
	case *VMSnapshotRollbackRequested:
		v.Settled, v.Pending = v.Status, ActionSnapshotRollback
	case *VMSnapshotDeleteRequested:
		v.Settled, v.Pending = v.Status, ActionSnapshotDelete
	case *VMSnapshotRolledBack:
		v.Status, v.Pending, v.LastError = e.Status, "", ""
		v.SnapshotParent = e.Name
	case *VMSnapshotDeleted:
		v.Pending, v.LastError = "", ""
		v.SnapshotParents = maps.Clone(v.SnapshotParents)
		v.Snapshots = slices.DeleteFunc(slices.Clone(v.Snapshots), func(s string) bool { return s == e.Name })
		for child, parent := range v.SnapshotParents {
			if parent == e.Name {
				v.SnapshotParents[child] = e.Parent
			}
		}
		delete(v.SnapshotParents, e.Name)
		if v.SnapshotParent == e.Name {
			v.SnapshotParent = e.Parent
		}
	}
}

// snapshotTaken records a successful snapshot in the tree.
func (v *VM) snapshotTaken(name string) {
	v.SnapshotParents = maps.Clone(v.SnapshotParents) // Apply runs on copies sharing the map
	if v.SnapshotParents == nil {
		v.SnapshotParents = map[string]string{}
	}
	v.SnapshotParents[name] = v.SnapshotParent
	v.SnapshotParent = name
}
