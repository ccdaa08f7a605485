package domain_test

import (
	"cmp"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/accountdb/accountdb/domain"
)

var allStatuses = []domain.VMStatus{domain.VMProvisioning, domain.VMStopped, domain.VMStarting, domain.VMRunning,
	domain.VMStopping, domain.VMDeleting, domain.VMDeleted, domain.VMFailed}

// requestAction asks v for a by the command that records its request.
func requestAction(t *testing.T, v *domain.VM, a domain.VMAction) ([]domain.Event, error) {
	t.Helper()
	switch a.Name {
	case domain.ActionResize:
		cores := v.Spec.Cores + 1
		return v.Resize(&cores, nil, nil)
	case domain.ActionSnapshot:
		return v.Snapshot("before-upgrade")
	case domain.ActionRebuild:
		return v.Rebuild("")
	case domain.ActionConfigure:
		user := "ops"
		return v.UpdateCloudInit(domain.CloudInitChange{User: &user}, func(string) string { return "" })
	case domain.ActionSnapshotRollback:
		v.Snapshots = []string{"before-upgrade"}
		return v.RollbackSnapshot("before-upgrade")
	case domain.ActionSnapshotDelete:
		v.Snapshots = []string{"before-upgrade"}
		return v.DeleteSnapshot("before-upgrade")
	case domain.ActionBackup:
		return v.Backup(uuid.New(), domain.BackupSnapshot, "local", "", uuid.Nil)
	case domain.ActionBackupDelete, domain.ActionRestore:
		id := uuid.New()
		v.Backups = []domain.VMBackup{{ID: id, Status: domain.BackupAvailable, Node: "pve1", VolumeID: "local:backup/x.vma.zst", Spec: v.Spec}}
		if a.Name == domain.ActionRestore {
			return v.RestoreInPlace(id, v.Name)
		}
		return v.DeleteBackup(id, "")
	}
	if a.RequestEvent != (&domain.VMActionRequested{}).EventType() {
		t.Fatalf("%s: no command requests it", a.Name)
	}
	return v.Act(a.Name)
}

// TestVMActionsDriveTheStatusMachine asks every action of the table in every
// status and checks that VM.Act, Resize, Snapshot and Apply do what the
// table says: refused outside AllowedFrom, Transient while pending,
// Settles on success, back where it was on failure.
func TestVMActionsDriveTheStatusMachine(t *testing.T) {
	for _, a := range domain.VMActions {
		if a.Name == domain.ActionCreate {
			continue
		}
		for _, from := range allStatuses {
			t.Run(a.Name+" from "+string(from), func(t *testing.T) {
				v := &domain.VM{ID: uuid.New(), Version: 3, Status: from, Spec: domain.VMSpec{Cores: 2, MemoryMB: 1024, DiskGB: 10},
					Name: "web-1", Kind: domain.KindQEMU, Node: "pve1", VMID: 101}
				evs, err := requestAction(t, v, a)
				if !slices.Contains(a.AllowedFrom, from) {
					if !errors.Is(err, domain.ErrInvalidTransition) {
						t.Fatalf("not allowed from %s, yet: %v", from, err)
					}
					return
				}
				if err != nil || len(evs) != 1 || evs[0].EventType() != a.RequestEvent {
					t.Fatalf("request: %v %v", evs, err)
				}
				failed := *v
				apply(v, evs)
				apply(&failed, evs)
				if want := cmp.Or(a.Transient, from); v.Status != want || v.Pending != a.Name || v.Status.Transient() != (a.Transient != "") {
					t.Fatalf("pending: %s (%q), want %s", v.Status, v.Pending, want)
				}
				apply(v, v.Result(a.Name, true, "UPID:x", "", nil, nil, "before-upgrade"))
				if want := cmp.Or(a.Settles, from); v.Status != want || v.Pending != "" {
					t.Fatalf("succeeded: %s (%q), want %s", v.Status, v.Pending, want)
				}
				apply(&failed, failed.Result(a.Name, false, "UPID:x", "boom", nil, nil, ""))
				// A failed rebuild or restore may have destroyed the guest already.
				if want := map[bool]domain.VMStatus{true: domain.VMFailed, false: from}[a.Name == domain.ActionRebuild || a.Name == domain.ActionRestore]; failed.Status != want || failed.Pending != "" {
					t.Fatalf("failed: %s (%q), want %s", failed.Status, failed.Pending, want)
				}
			})
		}
	}
}

func TestVMActionCreateFollowsTheTable(t *testing.T) {
	create, ok := domain.LookupVMAction(domain.ActionCreate)
	if !ok || len(create.AllowedFrom) != 0 {
		t.Fatalf("create: %+v %v", create, ok)
	}
	v := &domain.VM{ID: uuid.New()}
	evs, err := domain.RequestVM("web-1", domain.KindLXC, domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8}, "debian-12", uuid.New(), "", nil)
	if err != nil || evs[0].EventType() != create.RequestEvent {
		t.Fatalf("request: %v %v", evs, err)
	}
	apply(v, evs)
	if v.Status != create.Transient || v.Pending != create.Name {
		t.Fatalf("pending: %s (%q)", v.Status, v.Pending)
	}
	apply(v, v.Result(create.Name, true, "UPID:x", "", &domain.VMProvisioned{Node: "pve1", VMID: 101}, nil, ""))
	if v.Status != create.Settles {
		t.Fatalf("provisioned: %s", v.Status)
	}
}

// TestVMActionTableUnchanged pins what the table replaced: the statuses each
// action was allowed from, the agent's request events, the transient
// statuses and the message for an unknown action.
func TestVMActionTableUnchanged(t *testing.T) {
	allowed := map[string][]domain.VMStatus{
		domain.ActionCreate:   nil,
		domain.ActionStart:    {domain.VMStopped},
		domain.ActionStop:     {domain.VMRunning},
		domain.ActionShutdown: {domain.VMRunning},
		domain.ActionReboot:   {domain.VMRunning},
		domain.ActionResize:   {domain.VMStopped, domain.VMRunning},
		domain.ActionSnapshot: {domain.VMStopped, domain.VMRunning},
		domain.ActionDelete:   {domain.VMStopped, domain.VMRunning, domain.VMFailed},
		// Added with cloud-init and rebuilds.
		domain.ActionConfigure: {domain.VMStopped, domain.VMRunning},
		domain.ActionRebuild:   {domain.VMStopped, domain.VMRunning, domain.VMFailed},
		// Added with backups and snapshots, whole.
		domain.ActionSnapshotRollback: {domain.VMStopped, domain.VMRunning},
		domain.ActionSnapshotDelete:   {domain.VMStopped, domain.VMRunning},
		domain.ActionBackup:           {domain.VMStopped, domain.VMRunning},
		domain.ActionBackupDelete:     {domain.VMStopped, domain.VMRunning, domain.VMFailed, domain.VMDeleted},
		domain.ActionRestore:          {domain.VMStopped, domain.VMRunning, domain.VMFailed},
	}
	if len(domain.VMActions) != len(allowed) {
		t.Fatalf("%d actions, want %d", len(domain.VMActions), len(allowed))
	}
	for _, a := range domain.VMActions {
		if want, ok := allowed[a.Name]; !ok || !slices.Equal(a.AllowedFrom, want) {
			t.Errorf("%s: allowed from %v, want %v", a.Name, a.AllowedFrom, want)
		}
	}
	want := []string{"vm_create_requested", "vm_action_requested", "vm_resize_requested", "vm_snapshot_requested",
		"vm_cloud_init_update_requested", "vm_rebuild_requested", "vm_snapshot_rollback_requested", "vm_snapshot_delete_requested",
		"vm_backup_requested", "vm_backup_delete_requested", "vm_restore_requested"}
	if !slices.Equal(domain.RequestEventTypes, want) {
		t.Errorf("request events %v, want %v", domain.RequestEventTypes, want)
	}
	for _, s := range allStatuses {
		want := s == domain.VMProvisioning || s == domain.VMStarting || s == domain.VMStopping || s == domain.VMDeleting
		if s.Transient() != want {
			t.Errorf("%s transient: %v", s, s.Transient())
		}
	}
	v := &domain.VM{Version: 1, Status: domain.VMRunning}
	var ve *domain.ValidationError
	for _, name := range []string{"explode", domain.ActionCreate, domain.ActionResize, domain.ActionSnapshot} {
		if _, err := v.Act(name); !errors.As(err, &ve) || ve.Fields["action"] != "must be start, stop, shutdown or reboot" {
			t.Errorf("Act(%q): %v", name, err)
		}
	}
}

func TestRequestedAction(t *testing.T) {
	cases := map[domain.Event]string{
		&domain.VMCreateRequested{}:                          domain.ActionCreate,
		&domain.VMActionRequested{Action: domain.ActionStop}: domain.ActionStop,
		&domain.VMResizeRequested{}:                          domain.ActionResize,
		&domain.VMSnapshotRequested{Name: "s1"}:              domain.ActionSnapshot,
		&domain.VMRebuildRequested{}:                         domain.ActionRebuild,
		&domain.VMCloudInitUpdateRequested{}:                 domain.ActionConfigure,
	}
	for e, want := range cases {
		if got, ok := domain.RequestedAction(e); !ok || got != want {
			t.Errorf("%s: %q %v, want %q", e.EventType(), got, ok, want)
		}
	}
	if got, ok := domain.RequestedAction(&domain.VMActionRequested{}); !ok || got != "" {
		t.Errorf("a vm_action_requested naming nothing: %q %v", got, ok)
	}
	for _, e := range []domain.Event{&domain.VMProvisioned{}, &domain.VMActionSucceeded{Action: domain.ActionStart}} {
		if got, ok := domain.RequestedAction(e); ok {
			t.Errorf("%s requests %q", e.EventType(), got)
		}
	}
}
