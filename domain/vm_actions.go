package domain

import (
	"slices"
	"strings"
)

// VM actions: what the agent is asked to do. They name requests and results.
const (
	ActionCreate   = "create"
	ActionStart    = "start"
	ActionStop     = "stop"
	ActionShutdown = "shutdown"
	ActionReboot   = "reboot"
	ActionResize   = "resize"
	ActionSnapshot = "snapshot"
	ActionDelete   = "delete"
	// ActionConfigure writes changed cloud-init settings to Proxmox.
	ActionConfigure = "configure"
	ActionRebuild   = "rebuild"
)

// VMAction is one thing a VM can be asked to do: the event that records the
// request, the statuses it may be asked in, and the statuses it passes
// through. VMActions is the one list of them; VM.Apply and VM.Act, the
// API's routes, the agent's dispatch and the console (served by the API)
// all read it, so an action cannot be known to one and missing in another.
type VMAction struct {
	Name string
	// RequestEvent is the type of the event recording a request.
	RequestEvent string
	// Power marks an action that only changes whether the guest runs and
	// is requested by its name alone (the API's /actions/{name}).
	Power bool
	// AllowedFrom are the settled statuses the action may be asked in,
	// with no other action pending; none for create (no VM exists yet).
	AllowedFrom []VMStatus
	// Transient is the status while the agent works; "" keeps the status.
	Transient VMStatus
	// Settles is the status the action's success leaves; "" keeps it.
	Settles VMStatus
	// Disruptive marks an action that interrupts or destroys what runs on
	// the guest, which a client should confirm before asking for.
	Disruptive bool
}

// vmActionRequested is the request event of the actions that carry no
// parameters (VMActionRequested names them).
const vmActionRequested = "vm_action_requested"

// VMActions are all the actions, in the order documents list them.
var VMActions = []VMAction{
	{Name: ActionCreate, RequestEvent: "vm_create_requested", Transient: VMProvisioning, Settles: VMRunning},
	{Name: ActionStart, RequestEvent: vmActionRequested, Power: true,
		AllowedFrom: []VMStatus{VMStopped}, Transient: VMStarting, Settles: VMRunning},
	{Name: ActionStop, RequestEvent: vmActionRequested, Power: true, Disruptive: true,
		AllowedFrom: []VMStatus{VMRunning}, Transient: VMStopping, Settles: VMStopped},
	{Name: ActionShutdown, RequestEvent: vmActionRequested, Power: true, Disruptive: true,
		AllowedFrom: []VMStatus{VMRunning}, Transient: VMStopping, Settles: VMStopped},
	{Name: ActionReboot, RequestEvent: vmActionRequested, Power: true, Disruptive: true,
		AllowedFrom: []VMStatus{VMRunning}, Transient: VMStarting, Settles: VMRunning},
	{Name: ActionResize, RequestEvent: "vm_resize_requested", AllowedFrom: []VMStatus{VMStopped, VMRunning}},
	{Name: ActionSnapshot, RequestEvent: "vm_snapshot_requested", AllowedFrom: []VMStatus{VMStopped, VMRunning}},
	{Name: ActionDelete, RequestEvent: vmActionRequested, Disruptive: true,
		AllowedFrom: []VMStatus{VMStopped, VMRunning, VMFailed}, Transient: VMDeleting, Settles: VMDeleted},
	{Name: ActionConfigure, RequestEvent: "vm_cloud_init_update_requested", AllowedFrom: []VMStatus{VMStopped, VMRunning}},
	{Name: ActionRebuild, RequestEvent: "vm_rebuild_requested", Disruptive: true,
		AllowedFrom: []VMStatus{VMStopped, VMRunning, VMFailed}, Transient: VMProvisioning, Settles: VMRunning},
	// vm_snapshots.go, vm_backups.go: their events say the status.
	{Name: ActionSnapshotRollback, RequestEvent: "vm_snapshot_rollback_requested", Disruptive: true,
		AllowedFrom: []VMStatus{VMStopped, VMRunning}, Settles: VMStopped}, // running again only if RAM was saved
	{Name: ActionSnapshotDelete, RequestEvent: "vm_snapshot_delete_requested", AllowedFrom: []VMStatus{VMStopped, VMRunning}},
	{Name: ActionBackup, RequestEvent: "vm_backup_requested", AllowedFrom: []VMStatus{VMStopped, VMRunning}},
	{Name: ActionBackupDelete, RequestEvent: "vm_backup_delete_requested",
		AllowedFrom: []VMStatus{VMStopped, VMRunning, VMFailed, VMDeleted}},
	{Name: ActionRestore, RequestEvent: "vm_restore_requested", Disruptive: true,
		AllowedFrom: []VMStatus{VMStopped, VMRunning, VMFailed}, Transient: VMProvisioning, Settles: VMStopped},
}

// LookupVMAction is the action of that name.
func LookupVMAction(name string) (VMAction, bool) {
	i := slices.IndexFunc(VMActions, func(a VMAction) bool { return a.Name == name })
	if i < 0 {
		return VMAction{}, false
	}
	return VMActions[i], true
}

// RequestedAction is the action a request event asks for: the one a
// VMActionRequested names (perhaps none), or the one whose own request
// event e is. It is false for an event that is no request.
func RequestedAction(e Event) (string, bool) {
	if r, ok := e.(*VMActionRequested); ok {
		return r.Action, true
	}
	for _, a := range VMActions {
		if a.RequestEvent != vmActionRequested && a.RequestEvent == e.EventType() {
			return a.Name, true
		}
	}
	return "", false
}

// RequestEventTypes are the VM events the agent acts on.
var RequestEventTypes = func() []string {
	var types []string
	for _, a := range VMActions {
		if !slices.Contains(types, a.RequestEvent) {
			types = append(types, a.RequestEvent)
		}
	}
	return types
}()

// transientStatuses are the statuses an action passes through.
var transientStatuses = func() []VMStatus {
	var out []VMStatus
	for _, a := range VMActions {
		if a.Transient != "" && !slices.Contains(out, a.Transient) {
			out = append(out, a.Transient)
		}
	}
	return out
}()

// Transient reports whether the status waits for the agent's result.
func (s VMStatus) Transient() bool { return slices.Contains(transientStatuses, s) }

// namedAction is the action a VMActionRequested or VMActionSucceeded names
// whose request is a VMActionRequested; only those move the status on
// such events (a resize or snapshot has events of its own).
func namedAction(name string) (VMAction, bool) {
	a, ok := LookupVMAction(name)
	return a, ok && a.RequestEvent == vmActionRequested
}

// powerActionList is "start, stop, shutdown or reboot".
func powerActionList() string {
	var names []string
	for _, a := range VMActions {
		if a.Power {
			names = append(names, a.Name)
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
