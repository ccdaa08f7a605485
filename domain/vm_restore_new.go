package domain

import (
	"fmt"

	"github.com/google/uuid"
)

// VMRestoreSource is the backup a new VM is restored from: the agent
// restores the archive (qmrestore, pct restore) instead of cloning a
// template, and tags the guest at the restore itself, so a restore resumed
// after a crash finds its guest rather than making a second one.
type VMRestoreSource struct {
	BackupID   uuid.UUID `json:"backup_id"`
	SourceVMID uuid.UUID `json:"source_vm_id"`
	VolumeID   string    `json:"volume_id"`
}

// RestoreAsNewVM decides a new VM named name made from the source VM's
// backup id: the source's kind, cluster and template, the size it had when
// the backup was taken, on the node holding the archive.
func RestoreAsNewVM(source *VM, id uuid.UUID, name string) ([]Event, error) {
	b, err := source.availableBackup(id)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, &ValidationError{Fields: map[string]string{"name": `is required with target "new"`}}
	}
	if name == source.Name && source.Status != VMDeleted {
		return nil, fmt.Errorf("%w: the VM %q exists; choose another name or restore in place", ErrConflict, name)
	}
	events, err := RequestVM(name, source.Kind, b.Spec, source.Template, source.ClusterID, b.Node, nil)
	if err != nil {
		return nil, err
	}
	events[0].(*VMCreateRequested).Restore = &VMRestoreSource{BackupID: id, SourceVMID: source.ID, VolumeID: b.VolumeID}
	return events, nil
}
