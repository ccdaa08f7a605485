package domain

import (
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/google/uuid"
)

// VMStatus is where a VM is in its life (API.md).
type VMStatus string

const (
	VMProvisioning VMStatus = "provisioning"
	VMStopped      VMStatus = "stopped"
	VMStarting     VMStatus = "starting"
	VMRunning      VMStatus = "running"
	VMStopping     VMStatus = "stopping"
	VMDeleting     VMStatus = "deleting"
	VMDeleted      VMStatus = "deleted"
	VMFailed       VMStatus = "failed"
)

// VMKind is a QEMU virtual machine or an LXC container.
type VMKind string

const (
	KindQEMU VMKind = "qemu"
	KindLXC  VMKind = "lxc"
)

// StreamVM is the VM aggregate's stream type; StreamCluster a cluster's.
const (
	StreamVM      = "vm"
	StreamCluster = "cluster"
)

// VMSpec is the size of a VM.
type VMSpec struct {
	Cores    int `json:"cores"`
	MemoryMB int `json:"memory_mb"`
	DiskGB   int `json:"disk_gb"`
}

// VM events. Each user command records a *requested* event; the agent's
// outcome comes back as a result event whose causation is the request.
type (
	VMCreateRequested struct {
		Name      string    `json:"name"`
		Kind      VMKind    `json:"kind"`
		Spec      VMSpec    `json:"spec"`
		Template  string    `json:"template"`
		ClusterID uuid.UUID `json:"cluster_id"`
		Node      string    `json:"node,omitempty"` // empty: the agent places it
		// CloudInit, when set, is applied to the guest before its first start.
		CloudInit *CloudInit `json:"cloud_init,omitempty"`
		// Network, when set, is the address allocated from a pool in the
		// same transaction (vm_network.go).
		Network *VMNetwork `json:"network,omitempty"`
		// Restore, when set, makes the guest from a backup, not a template
		// (vm_restore_new.go).
		Restore *VMRestoreSource `json:"restore,omitempty"`
	}
	VMProvisioned struct {
		ClusterID uuid.UUID `json:"cluster_id"`
		Node      string    `json:"node"`
		VMID      int       `json:"vmid"`
		TaskID    string    `json:"task_id"`
	}
	VMActionRequested struct {
		Action string `json:"action"` // start, stop, shutdown, reboot, delete
	}
	VMResizeRequested struct {
		Spec VMSpec `json:"spec"` // the whole new size
	}
	VMSnapshotRequested struct {
		Name        string `json:"name"`
		Description string `json:"description,omitempty"`
		// VMState: the RAM of the running guest is saved too.
		VMState bool `json:"vmstate,omitempty"`
		// Parent is the snapshot the guest was at (vm_snapshots.go).
		Parent string `json:"parent,omitempty"`
	}
	// VMActionSucceeded is the result of a start, stop, shutdown, reboot,
	// resize, snapshot or delete.
	VMActionSucceeded struct {
		Action   string  `json:"action"`
		TaskID   string  `json:"task_id"`
		Spec     *VMSpec `json:"spec,omitempty"`     // resize
		Snapshot string  `json:"snapshot,omitempty"` // snapshot
		// CloudInit is what Proxmox now holds, after a configure.
		CloudInit *CloudInit `json:"cloud_init,omitempty"`
	}
	// VMActionFailed is a permanent failure of any action, with PVE's message.
	VMActionFailed struct {
		Action string `json:"action"`
		TaskID string `json:"task_id,omitempty"`
		Error  string `json:"error"`
	}
	// VMDriftDetected: reconciliation saw the VM in another state on
	// Proxmox than AccountDB believed (changed by hand outside AccountDB).
	VMDriftDetected struct {
		Expected VMStatus `json:"expected"`
		Observed VMStatus `json:"observed"` // running, stopped, or deleted (missing)
	}
	// VMOperationTimedOut: no result arrived before the deadline; the task
	// is presumed lost.
	VMOperationTimedOut struct {
		Action   string        `json:"action"`
		Deadline time.Duration `json:"deadline_ns"`
	}
)

func (VMCreateRequested) EventType() string   { return "vm_create_requested" }
func (VMProvisioned) EventType() string       { return "vm_provisioned" }
func (VMActionRequested) EventType() string   { return "vm_action_requested" }
func (VMResizeRequested) EventType() string   { return "vm_resize_requested" }
func (VMSnapshotRequested) EventType() string { return "vm_snapshot_requested" }
func (VMActionSucceeded) EventType() string   { return "vm_action_succeeded" }
func (VMActionFailed) EventType() string      { return "vm_action_failed" }
func (VMDriftDetected) EventType() string     { return "vm_drift_detected" }
func (VMOperationTimedOut) EventType() string { return "vm_operation_timed_out" }

var vmEvents = []func() Event{
	func() Event { return &VMCreateRequested{} },
	func() Event { return &VMProvisioned{} },
	func() Event { return &VMActionRequested{} },
	func() Event { return &VMResizeRequested{} },
	func() Event { return &VMSnapshotRequested{} },
	func() Event { return &VMActionSucceeded{} },
	func() Event { return &VMActionFailed{} },
	func() Event { return &VMDriftDetected{} },
	func() Event { return &VMOperationTimedOut{} },
	func() Event { return &VMGuestAddressesReported{} },
}

// VM is a virtual machine or container of a tenant.
type VM struct {
	ID        uuid.UUID
	TenantID  uuid.UUID
	Name      string
	Kind      VMKind
	Spec      VMSpec
	Template  string
	ClusterID uuid.UUID
	Node      string
	VMID      int
	Status    VMStatus
	// Pending is the action awaiting its result; "" when none.
	Pending string
	// PendingSpec is a requested resize; its size counts for quota now.
	PendingSpec *VMSpec
	// Settled is the status to return to when the pending action fails.
	Settled   VMStatus
	LastError string
	Snapshots []string
	// SnapshotParent is the snapshot the guest was last taken or rolled
	// back to ("" for none); SnapshotParents each snapshot's parent
	// (vm_snapshots.go).
	SnapshotParent  string
	SnapshotParents map[string]string
	// Backups are the VM's backups, deleted ones included; Restoring the
	// backup a pending restore reads (vm_backups.go).
	Backups   []VMBackup
	Restoring uuid.UUID
	// CloudInit is what the guest is given at boot (nil: the template's own).
	CloudInit *CloudInit
	// PendingCloudInit is a requested cloud-init change not yet on Proxmox.
	PendingCloudInit *CloudInit
	// PendingChanges: Proxmox holds cloud-init settings the guest has not
	// booted with yet.
	PendingChanges bool
	// PendingSince is when the pending changes were written to Proxmox.
	PendingSince time.Time
	// RebuildDone are the steps of the pending rebuild already recorded.
	RebuildDone []string
	// Network is the pool address allocated at creation (nil: none);
	// GuestAddresses what the guest last reported (vm_network.go).
	Network        *VMNetwork
	GuestAddresses []string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Version        int64
}

// Exists reports whether the VM has been requested.
func (v *VM) Exists() bool { return v.Version > 0 }

// Apply mutates the VM by one recorded event.
func (v *VM) Apply(e Event, at time.Time) {
	switch e := e.(type) {
	case *VMCreateRequested:
		v.Name, v.Kind, v.Spec, v.Template, v.ClusterID, v.Node = e.Name, e.Kind, e.Spec, e.Template, e.ClusterID, e.Node
		v.CloudInit, v.Network = e.CloudInit, e.Network
		v.Status, v.Pending, v.CreatedAt = VMProvisioning, ActionCreate, at
	case *VMProvisioned:
		v.ClusterID, v.Node, v.VMID = e.ClusterID, e.Node, e.VMID
		v.Status, v.Pending, v.LastError = VMRunning, "", ""
	case *VMActionRequested:
		v.Settled, v.Pending = v.Status, e.Action
		if a, ok := namedAction(e.Action); ok && a.Transient != "" {
			v.Status = a.Transient
		}
	case *VMResizeRequested:
		s := e.Spec
		v.Settled, v.Pending, v.PendingSpec = v.Status, ActionResize, &s
	case *VMSnapshotRequested, *VMSnapshotRollbackRequested, *VMSnapshotDeleteRequested, *VMSnapshotRolledBack, *VMSnapshotDeleted:
		v.applySnapshots(e)
	case *VMBackupRequested, *VMBackupCreated, *VMBackupDeleteRequested, *VMBackupDeleted, *VMRestoreRequested, *VMRestored:
		v.applyBackups(e, at)
	case *VMActionSucceeded:
		v.LastError = ""
		if a, ok := namedAction(e.Action); ok && a.Settles != "" {
			v.Status = a.Settles
		}
		switch e.Action {
		case ActionResize:
			if e.Spec != nil {
				v.Spec = *e.Spec
			}
			v.PendingSpec = nil
		case ActionSnapshot:
			v.Snapshots = append(slices.Clone(v.Snapshots), e.Snapshot)
			v.snapshotTaken(e.Snapshot)
		}
		v.applyCloudInitUpdate(e, at)
		v.Pending = ""
	case *VMActionFailed:
		v.LastError = e.Error
		v.failBackup(e.Action)
		v.applyCloudInitUpdate(e, at)
		v.failPending(e.Action)
	case *VMOperationTimedOut:
		v.LastError = fmt.Sprintf("%s: no result from the agent within %s; the task is presumed lost", e.Action, e.Deadline)
		v.failBackup(e.Action)
		v.Status, v.Pending, v.PendingSpec = VMFailed, "", nil
	case *VMRebuildRequested, *VMRebuildProgressed, *VMRebuilt:
		v.applyRebuild(e)
	case *VMCloudInitUpdateRequested, *VMCloudInitApplied:
		v.applyCloudInitUpdate(e, at)
	case *VMGuestAddressesReported:
		v.GuestAddresses = e.Addresses
	case *VMDriftDetected:
		v.applyCloudInitUpdate(e, at)
		v.Status = e.Observed
		if e.Observed == VMDeleted {
			v.LastError = "deleted on Proxmox outside AccountDB"
		}
	}
	v.UpdatedAt = at
	v.Version++
}

// failPending settles a failed action: a failed create, rebuild or restore
// leaves the VM failed (the guest may be gone or half-replaced); any other
// failure returns it to where it was before the action.
func (v *VM) failPending(action string) {
	if action == ActionCreate || action == ActionRebuild || action == ActionRestore {
		v.Status = VMFailed
	} else if v.Settled != "" {
		v.Status = v.Settled
	}
	v.Pending, v.PendingSpec, v.RebuildDone, v.Restoring = "", nil, nil, uuid.Nil
}

// Allocated is what the VM counts against its tenant's quota: the larger of
// its size and a pending resize. A deleted VM, and one whose creation failed
// (it never existed on Proxmox), count nothing. Provisioning counts.
func (v *VM) Allocated() VMSpec {
	if !v.Exists() || v.Status == VMDeleted || (v.Status == VMFailed && v.VMID == 0) {
		return VMSpec{}
	}
	s := v.Spec
	if p := v.PendingSpec; p != nil {
		s = VMSpec{Cores: max(s.Cores, p.Cores), MemoryMB: max(s.MemoryMB, p.MemoryMB), DiskGB: max(s.DiskGB, p.DiskGB)}
	}
	return s
}

var vmNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Limits of one VM's size.
const (
	MaxVMCores    = 128
	MaxVMMemoryMB = 4 << 20 // 4 TiB
	MaxVMDiskGB   = 64 << 10
)

func (s VMSpec) validate(f fieldErrors) {
	if s.Cores < 1 || s.Cores > MaxVMCores {
		f.add("cores", fmt.Sprintf("must be from 1 to %d", MaxVMCores))
	}
	if s.MemoryMB < 64 || s.MemoryMB > MaxVMMemoryMB {
		f.add("memory_mb", fmt.Sprintf("must be from 64 to %d", MaxVMMemoryMB))
	}
	if s.DiskGB < 1 || s.DiskGB > MaxVMDiskGB {
		f.add("disk_gb", fmt.Sprintf("must be from 1 to %d", MaxVMDiskGB))
	}
}

// RequestVM decides a new VM. The template must be known on the cluster;
// the caller resolves it (and the cluster) before calling. cloudInit, if
// not nil, was built by NewCloudInit.
func RequestVM(name string, kind VMKind, spec VMSpec, template string, cluster uuid.UUID, node string, cloudInit *CloudInit) ([]Event, error) {
	f := fieldErrors{}
	if !vmNamePattern.MatchString(name) {
		f.add("name", "must be a DNS label: lower-case letters, digits and hyphens, at most 63")
	}
	if kind != KindQEMU && kind != KindLXC {
		f.add("kind", `must be "qemu" or "lxc"`)
	}
	spec.validate(f)
	if template == "" {
		f.add("template", "is required")
	}
	if err := f.err(); err != nil {
		return nil, err
	}
	return []Event{&VMCreateRequested{Name: name, Kind: kind, Spec: spec, Template: template, ClusterID: cluster, Node: node, CloudInit: cloudInit}}, nil
}

func (v *VM) allows(action string) error {
	if !v.Exists() {
		return ErrNotFound
	}
	if v.Pending != "" {
		return fmt.Errorf("%w: %s is still in progress", ErrInvalidTransition, v.Pending)
	}
	if a, ok := LookupVMAction(action); ok && slices.Contains(a.AllowedFrom, v.Status) {
		return nil
	}
	return fmt.Errorf("%w: cannot %s a VM that is %s", ErrInvalidTransition, action, v.Status)
}

// Act requests an action a VMActionRequested names: a power action or the
// deletion.
func (v *VM) Act(action string) ([]Event, error) {
	if _, ok := namedAction(action); !ok {
		return nil, &ValidationError{Fields: map[string]string{"action": "must be " + powerActionList()}}
	}
	if err := v.allows(action); err != nil {
		return nil, err
	}
	return []Event{&VMActionRequested{Action: action}}, nil
}

// Resize requests a new size; nil fields keep the current value. Disks only
// grow.
func (v *VM) Resize(cores, memoryMB, diskGB *int) ([]Event, error) {
	if err := v.allows(ActionResize); err != nil {
		return nil, err
	}
	next := v.Spec
	if cores != nil {
		next.Cores = *cores
	}
	if memoryMB != nil {
		next.MemoryMB = *memoryMB
	}
	if diskGB != nil {
		next.DiskGB = *diskGB
	}
	f := fieldErrors{}
	if cores == nil && memoryMB == nil && diskGB == nil {
		f.add("body", "cores, memory_mb or disk_gb is required")
	}
	next.validate(f)
	if err := f.err(); err != nil {
		return nil, err
	}
	if next.DiskGB < v.Spec.DiskGB {
		return nil, fmt.Errorf("%w: disks only grow (%d GB now)", ErrInvalidTransition, v.Spec.DiskGB)
	}
	if next == v.Spec {
		return nil, nil
	}
	return []Event{&VMResizeRequested{Spec: next}}, nil
}

var snapshotNamePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{1,39}$`)

// Snapshot requests a snapshot with a PVE-valid name.
func (v *VM) Snapshot(name string) ([]Event, error) {
	if !snapshotNamePattern.MatchString(name) {
		return nil, &ValidationError{Fields: map[string]string{"name": "2 to 40 letters, digits, - or _, starting with a letter"}}
	}
	if err := v.allows(ActionSnapshot); err != nil {
		return nil, err
	}
	for _, s := range v.Snapshots {
		if s == name {
			return nil, fmt.Errorf("%w: snapshot %q exists", ErrConflict, name)
		}
	}
	return []Event{&VMSnapshotRequested{Name: name}}, nil
}

// Result records the agent's outcome of the pending action. A result for an
// action that is no longer pending (a duplicate, or one that arrived after a
// timeout) records nothing.
func (v *VM) Result(action string, ok bool, taskID, errText string, provisioned *VMProvisioned, spec *VMSpec, snapshot string) []Event {
	o := ActionOutcome{Action: action, OK: ok, TaskID: taskID, Error: errText, Snapshot: snapshot}
	if provisioned != nil {
		o.Node, o.PVEVMID = provisioned.Node, provisioned.VMID
	}
	if events, mine := v.BackupOrSnapshotResult(o); mine {
		return events
	}
	if !v.Exists() || v.Pending != action {
		return nil
	}
	switch {
	case !ok:
		return []Event{&VMActionFailed{Action: action, TaskID: taskID, Error: errText}}
	case action == ActionCreate && provisioned != nil:
		return []Event{provisioned}
	case action == ActionCreate:
		return []Event{&VMActionFailed{Action: action, TaskID: taskID, Error: "agent reported success without a placement"}}
	case action == ActionRebuild:
		return []Event{v.rebuilt(taskID, provisioned)}
	}
	var ci *CloudInit
	if action == ActionConfigure {
		ci = v.PendingCloudInit
	}
	return []Event{&VMActionSucceeded{Action: action, TaskID: taskID, Spec: spec, Snapshot: snapshot, CloudInit: ci}}
}

// Observe turns what reconciliation saw on Proxmox into drift, when the VM is
// settled and the observation disagrees, or into its pending changes read,
// when its running guest booted after they were written (bootedAt: the
// latest the guest can have booted, zero when not known).
func (v *VM) Observe(observed VMStatus, bootedAt time.Time) []Event {
	if !v.Exists() || v.Pending != "" || v.Status.Transient() || v.Status == VMDeleted || v.Status == VMFailed {
		return nil
	}
	if observed == v.Status {
		return v.observeBoot(observed, bootedAt)
	}
	if observed != VMRunning && observed != VMStopped && observed != VMDeleted {
		return nil
	}
	return []Event{&VMDriftDetected{Expected: v.Status, Observed: observed}}
}

// TimeOut fails a pending action whose result never came.
func (v *VM) TimeOut(deadline time.Duration) []Event {
	if !v.Exists() || v.Pending == "" {
		return nil
	}
	return []Event{&VMOperationTimedOut{Action: v.Pending, Deadline: deadline}}
}
