package domain

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Backups of a VM: Proxmox's vzdump archives. A backup belongs to the VM
// it was taken of and lives on that VM's stream, so it outlives the guest:
// a deleted VM's backups can still be listed, restored into a new VM and
// deleted. Taking, deleting and restoring are VM actions (one at a time per
// VM, as Proxmox's guest locks have it).

// The backup actions (vm_actions.go lists them).
const (
	ActionBackup       = "backup"
	ActionBackupDelete = "backup_delete"
	ActionRestore      = "restore"
)

// Backup modes, vzdump's --mode.
const (
	BackupSnapshot = "snapshot"
	BackupSuspend  = "suspend"
	BackupStop     = "stop"
)

// BackupStatus is where a backup is in its life.
type BackupStatus string

const (
	BackupCreating  BackupStatus = "creating"
	BackupAvailable BackupStatus = "available"
	BackupFailed    BackupStatus = "failed"
	BackupDeleting  BackupStatus = "deleting"
	BackupDeleted   BackupStatus = "deleted"
)

// ErrConfirmationRequired: a restore in place was asked without the VM's
// name as confirm_name. HTTP 422.
var ErrConfirmationRequired = errors.New("confirm_name must be the VM's name: a restore in place overwrites its disks")

// LongActionDeadline is how long a backup or a restore may take: vzdump
// and qmrestore of a large guest run for hours, far beyond the few minutes
// a power action or a clone takes.
const LongActionDeadline = 6 * time.Hour

// ActionDeadline is how long action may wait for its result: base (the
// deployment's deadline for VM actions), or LongActionDeadline for a
// backup or a restore if that is longer.
func ActionDeadline(action string, base time.Duration) time.Duration {
	if action == ActionBackup || action == ActionRestore {
		return max(base, LongActionDeadline)
	}
	return base
}

// DefaultBackupStorage is Proxmox's own default for vzdump.
const DefaultBackupStorage = "local"

// BackupsGBLimit is how many GB of backups the tenant may keep: the quota's
// max_backups_gb, or by default four times its disk quota.
func (q Quota) BackupsGBLimit() int {
	if q.MaxBackupsGB > 0 {
		return q.MaxBackupsGB
	}
	return 4 * q.MaxDiskGB
}

// VMBackup is one backup of the VM.
type VMBackup struct {
	ID         uuid.UUID    `json:"id"`
	Status     BackupStatus `json:"status"`
	Mode       string       `json:"mode"`
	Storage    string       `json:"storage"`
	Node       string       `json:"node,omitempty"`
	VolumeID   string       `json:"volume_id,omitempty"`
	SizeBytes  int64        `json:"size_bytes,omitempty"`
	Verified   bool         `json:"verified,omitempty"`
	Spec       VMSpec       `json:"spec"` // the VM's size when it was taken
	ScheduleID uuid.UUID    `json:"schedule_id,omitzero"`
	CreatedAt  time.Time    `json:"created_at"`
}

type (
	// VMBackupRequested asks for a vzdump of the guest to Storage.
	VMBackupRequested struct {
		BackupID uuid.UUID `json:"backup_id"`
		Mode     string    `json:"mode"`
		Storage  string    `json:"storage"`
		Note     string    `json:"note,omitempty"`
		Spec     VMSpec    `json:"spec"`
		// ScheduleID is the schedule that asked, if one did.
		ScheduleID uuid.UUID `json:"schedule_id,omitzero"`
	}
	// VMBackupCreated: the archive VolumeID exists.
	VMBackupCreated struct {
		BackupID  uuid.UUID `json:"backup_id"`
		VolumeID  string    `json:"volume_id"`
		SizeBytes int64     `json:"size_bytes"`
		Node      string    `json:"node"`
		TaskID    string    `json:"task_id,omitempty"`
		// Verified: the agent read the archive's configuration back and it
		// is this VM's.
		Verified bool `json:"verified,omitempty"`
	}
	// VMBackupDeleteRequested asks for the archive removed from storage.
	VMBackupDeleteRequested struct {
		BackupID  uuid.UUID `json:"backup_id"`
		VolumeID  string    `json:"volume_id"`
		Node      string    `json:"node"`
		ClusterID uuid.UUID `json:"cluster_id"` // the guest may be gone
		// Reason is "retention" when a schedule's prune asked.
		Reason string `json:"reason,omitempty"`
	}
	VMBackupDeleted struct {
		BackupID uuid.UUID `json:"backup_id"`
		TaskID   string    `json:"task_id,omitempty"`
	}
	// VMRestoreRequested asks for the guest replaced by the backup's
	// contents (restore in place; a restore into a new VM is a create).
	VMRestoreRequested struct {
		BackupID uuid.UUID `json:"backup_id"`
		VolumeID string    `json:"volume_id"`
		Node     string    `json:"node"`
		Spec     VMSpec    `json:"spec"`
	}
	VMRestored struct {
		BackupID uuid.UUID `json:"backup_id"`
		Node     string    `json:"node"`
		VMID     int       `json:"vmid"`
		TaskID   string    `json:"task_id,omitempty"`
	}
)

func (VMBackupRequested) EventType() string       { return "vm_backup_requested" }
func (VMBackupCreated) EventType() string         { return "vm_backup_created" }
func (VMBackupDeleteRequested) EventType() string { return "vm_backup_delete_requested" }
func (VMBackupDeleted) EventType() string         { return "vm_backup_deleted" }
func (VMRestoreRequested) EventType() string      { return "vm_restore_requested" }
func (VMRestored) EventType() string              { return "vm_restored" }

// vmBackupEvents are the events of backups and restores.
var vmBackupEvents = []func() Event{
	func() Event { return &VMBackupRequested{} },
	func() Event { return &VMBackupCreated{} },
	func() Event { return &VMBackupDeleteRequested{} },
	func() Event { return &VMBackupDeleted{} },
	func() Event { return &VMRestoreRequested{} },
	func() Event { return &VMRestored{} },
}

// VMBackupAndSnapshotEvents are every event of this file and of
// vm_snapshots.go, for the read models that follow them all.
func VMBackupAndSnapshotEvents() []Event {
	var out []Event
	for _, f := range append(slices.Clone(vmBackupEvents), vmSnapshotEvents...) {
		out = append(out, f())
	}
	return out
}

// storageIDPattern is pve-storage-id.
var storageIDPattern = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]$`)

// ValidStorageID reports whether s is a Proxmox storage id.
func ValidStorageID(s string) bool { return len(s) <= 64 && storageIDPattern.MatchString(s) }

// Backup requests a backup with id to storage (the caller resolves the
// cluster's backup storage and checks the tenant's backup quota).
func (v *VM) Backup(id uuid.UUID, mode, storage, note string, schedule uuid.UUID) ([]Event, error) {
	f := fieldErrors{}
	if mode == "" {
		mode = BackupSnapshot
	}
	if mode != BackupSnapshot && mode != BackupSuspend && mode != BackupStop {
		f.add("mode", `must be "snapshot", "suspend" or "stop"`)
	}
	if !ValidStorageID(storage) {
		f.add("storage", "must be a Proxmox storage id")
	}
	if len(note) > 1024 || !ValidText(note) {
		f.add("note", "at most 1024 bytes of valid UTF-8 without NUL characters")
	}
	if err := f.err(); err != nil {
		return nil, err
	}
	if v.FindBackup(id) != nil {
		return nil, nil // asked again (a schedule's run, an agent's retry): nothing new
	}
	if err := v.allows(ActionBackup); err != nil {
		return nil, err
	}
	if v.VMID == 0 {
		return nil, fmt.Errorf("%w: the VM was never provisioned", ErrInvalidTransition)
	}
	return []Event{&VMBackupRequested{BackupID: id, Mode: mode, Storage: storage, Note: note, Spec: v.Spec, ScheduleID: schedule}}, nil
}

// FindBackup is the VM's backup id (nil if it has none of that id).
func (v *VM) FindBackup(id uuid.UUID) *VMBackup {
	i := slices.IndexFunc(v.Backups, func(b VMBackup) bool { return b.ID == id })
	if i < 0 {
		return nil
	}
	return &v.Backups[i]
}

// availableBackup is backup id, which must exist and be available.
func (v *VM) availableBackup(id uuid.UUID) (*VMBackup, error) {
	b := v.FindBackup(id)
	if b == nil || b.Status == BackupDeleted {
		return nil, ErrNotFound
	}
	if b.Status != BackupAvailable {
		return nil, fmt.Errorf("%w: the backup is %s", ErrInvalidTransition, b.Status)
	}
	return b, nil
}

// DeleteBackup requests backup id removed; reason is "" for a user's
// request, "retention" for a schedule's prune.
func (v *VM) DeleteBackup(id uuid.UUID, reason string) ([]Event, error) {
	b := v.FindBackup(id)
	if b != nil && b.Status == BackupFailed {
		// Nothing on Proxmox to remove: the record goes at once.
		if err := v.allows(ActionBackupDelete); err != nil {
			return nil, err
		}
		return []Event{&VMBackupDeleted{BackupID: id}}, nil
	}
	b, err := v.availableBackup(id)
	if err != nil {
		return nil, err
	}
	if err := v.allows(ActionBackupDelete); err != nil {
		return nil, err
	}
	return []Event{&VMBackupDeleteRequested{BackupID: id, VolumeID: b.VolumeID, Node: b.Node, ClusterID: v.ClusterID, Reason: reason}}, nil
}

// RestoreInPlace requests the guest replaced by backup id. confirmName
// must be the VM's name: the guest's disks are overwritten.
func (v *VM) RestoreInPlace(id uuid.UUID, confirmName string) ([]Event, error) {
	b, err := v.availableBackup(id)
	if err != nil {
		return nil, err
	}
	if v.Status == VMDeleted {
		return nil, fmt.Errorf(`%w: the VM is deleted; restore the backup with target "new"`, ErrInvalidTransition)
	}
	if confirmName != v.Name {
		return nil, ErrConfirmationRequired
	}
	if err := v.allows(ActionRestore); err != nil {
		return nil, err
	}
	return []Event{&VMRestoreRequested{BackupID: id, VolumeID: b.VolumeID, Node: b.Node, Spec: b.Spec}}, nil
}

// pendingBackupIndex is the backup a pending backup action works on.
func (v *VM) pendingBackupIndex() int {
	return slices.IndexFunc(v.Backups, func(b VMBackup) bool {
		return b.Status == BackupCreating || b.Status == BackupDeleting
	})
}

// backupResult is the success event of a pending backup action.
func (v *VM) backupResult(o ActionOutcome) Event {
	switch o.Action {
	case ActionBackup:
		id := uuid.Nil
		if i := v.pendingBackupIndex(); i >= 0 {
			id = v.Backups[i].ID
		}
		return &VMBackupCreated{BackupID: id, VolumeID: o.VolumeID, SizeBytes: o.SizeBytes, Node: o.Node, TaskID: o.TaskID, Verified: o.Verified}
	case ActionBackupDelete:
		id := uuid.Nil
		if i := v.pendingBackupIndex(); i >= 0 {
			id = v.Backups[i].ID
		}
		return &VMBackupDeleted{BackupID: id, TaskID: o.TaskID}
	}
	return &VMRestored{BackupID: v.Restoring, Node: o.Node, VMID: o.PVEVMID, TaskID: o.TaskID}
}

// setBackup replaces backup id's record by f applied to a copy (Apply runs
// on copies of the aggregate that share its slices).
func (v *VM) setBackup(id uuid.UUID, f func(*VMBackup)) {
	v.Backups = slices.Clone(v.Backups)
	if i := slices.IndexFunc(v.Backups, func(b VMBackup) bool { return b.ID == id }); i >= 0 {
		f(&v.Backups[i])
	}
}

// applyBackups is VM.Apply's part for the backup events.
func (v *VM) applyBackups(e Event, at time.Time) {
	switch e := e.(type) {
	case *VMBackupRequested:
		v.Settled, v.Pending = v.Status, ActionBackup
		v.Backups = append(slices.Clone(v.Backups), VMBackup{ID: e.BackupID, Status: BackupCreating, Mode: e.Mode,
			Storage: e.Storage, Spec: e.Spec, ScheduleID: e.ScheduleID, CreatedAt: at})
	case *VMBackupCreated:
		v.Pending, v.LastError = "", ""
		v.setBackup(e.BackupID, func(b *VMBackup) {
			b.Status, b.VolumeID, b.SizeBytes, b.Node, b.Verified = BackupAvailable, e.VolumeID, e.SizeBytes, e.Node, e.Verified
		})
	case *VMBackupDeleteRequested:
		v.Settled, v.Pending = v.Status, ActionBackupDelete
		v.setBackup(e.BackupID, func(b *VMBackup) { b.Status = BackupDeleting })
	case *VMBackupDeleted:
		if v.Pending == ActionBackupDelete {
			v.Pending, v.LastError = "", ""
		}
		v.setBackup(e.BackupID, func(b *VMBackup) { b.Status = BackupDeleted })
	case *VMRestoreRequested:
		s := e.Spec
		v.Settled, v.Pending, v.Status, v.PendingSpec = v.Status, ActionRestore, VMProvisioning, &s
		v.Restoring = e.BackupID
	case *VMRestored:
		if v.PendingSpec != nil {
			v.Spec = *v.PendingSpec
		}
		v.Status, v.Pending, v.LastError, v.PendingSpec = VMStopped, "", "", nil
		v.Node, v.VMID = e.Node, e.VMID
		v.Snapshots, v.SnapshotParents, v.SnapshotParent = nil, nil, "" // a restore drops the guest's snapshots
		v.Restoring = uuid.Nil
	}
}

// failBackup settles a failed backup action's record: a failed backup stays
// listed as failed (it never became an archive), a failed deletion leaves
// the archive available.
func (v *VM) failBackup(action string) {
	i := v.pendingBackupIndex()
	if i < 0 {
		return
	}
	id := v.Backups[i].ID
	switch action {
	case ActionBackup:
		v.setBackup(id, func(b *VMBackup) { b.Status = BackupFailed })
	case ActionBackupDelete:
		v.setBackup(id, func(b *VMBackup) { b.Status = BackupAvailable })
	}
}

// ActionOutcome is the agent's report of an action, as the domain needs
// it (the core translates the agent's protocol into it).
type ActionOutcome struct {
	Action    string
	OK        bool
	TaskID    string
	Error     string
	Node      string
	PVEVMID   int
	Status    VMStatus // the guest's power state after a rollback
	Snapshot  string
	VolumeID  string
	SizeBytes int64
	Verified  bool
}

// BackupOrSnapshotResult records the outcome of one of the actions of this
// file or of vm_snapshots.go; false for any other action (VM.Result's).
func (v *VM) BackupOrSnapshotResult(o ActionOutcome) ([]Event, bool) {
	switch o.Action {
	case ActionBackup, ActionBackupDelete, ActionRestore, ActionSnapshotRollback, ActionSnapshotDelete:
	default:
		return nil, false
	}
	if !v.Exists() || v.Pending != o.Action {
		return nil, true
	}
	if !o.OK {
		return []Event{&VMActionFailed{Action: o.Action, TaskID: o.TaskID, Error: o.Error}}, true
	}
	switch o.Action {
	case ActionSnapshotRollback, ActionSnapshotDelete:
		return []Event{v.snapshotResult(o.Action, o.Snapshot, o.TaskID, o.Status)}, true
	}
	return []Event{v.backupResult(o)}, true
}

// BackupOrSnapshotResultOf is BackupOrSnapshotResult's events alone.
func (v *VM) BackupOrSnapshotResultOf(o ActionOutcome) []Event {
	events, _ := v.BackupOrSnapshotResult(o)
	return events
}
