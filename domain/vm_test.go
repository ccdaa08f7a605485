package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
)

func apply(v *domain.VM, events []domain.Event) {
	for _, e := range events {
		v.Apply(e, time.Now())
	}
}

func runningVM(t *testing.T) *domain.VM {
	t.Helper()
	v := &domain.VM{ID: uuid.New()}
	evs, err := domain.RequestVM("web-1", domain.KindQEMU, domain.VMSpec{Cores: 2, MemoryMB: 2048, DiskGB: 20}, "debian-12", uuid.New(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	apply(v, evs)
	apply(v, v.Result(domain.ActionCreate, true, "UPID:x", "", &domain.VMProvisioned{Node: "pve1", VMID: 101}, nil, ""))
	if v.Status != domain.VMRunning {
		t.Fatalf("provisioned VM is %s", v.Status)
	}
	return v
}

func TestVMStatusMachine(t *testing.T) {
	cases := []struct {
		action       string
		from         domain.VMStatus
		during, done domain.VMStatus
	}{
		{domain.ActionStop, domain.VMRunning, domain.VMStopping, domain.VMStopped},
		{domain.ActionShutdown, domain.VMRunning, domain.VMStopping, domain.VMStopped},
		{domain.ActionReboot, domain.VMRunning, domain.VMStarting, domain.VMRunning},
		{domain.ActionStart, domain.VMStopped, domain.VMStarting, domain.VMRunning},
		{domain.ActionDelete, domain.VMStopped, domain.VMDeleting, domain.VMDeleted},
		{domain.ActionDelete, domain.VMRunning, domain.VMDeleting, domain.VMDeleted},
	}
	for _, c := range cases {
		t.Run(c.action+" from "+string(c.from), func(t *testing.T) {
			v := runningVM(t)
			if c.from == domain.VMStopped {
				evs, _ := v.Act(domain.ActionStop)
				apply(v, evs)
				apply(v, v.Result(domain.ActionStop, true, "", "", nil, nil, ""))
			}
			evs, err := v.Act(c.action)
			if err != nil {
				t.Fatal(err)
			}
			apply(v, evs)
			if v.Status != c.during || v.Pending != c.action {
				t.Fatalf("during: %s pending %q", v.Status, v.Pending)
			}
			if _, err := v.Act(domain.ActionStart); !errors.Is(err, domain.ErrInvalidTransition) {
				t.Fatalf("a second action while one is pending: %v", err)
			}
			apply(v, v.Result(c.action, true, "", "", nil, nil, ""))
			if v.Status != c.done || v.Pending != "" {
				t.Fatalf("done: %s pending %q", v.Status, v.Pending)
			}
		})
	}
}

func TestVMFailedActionReturnsToSettledStatus(t *testing.T) {
	v := runningVM(t)
	evs, _ := v.Act(domain.ActionStop)
	apply(v, evs)
	apply(v, v.Result(domain.ActionStop, false, "UPID:y", "VM is locked (backup)", nil, nil, ""))
	if v.Status != domain.VMRunning || v.LastError != "VM is locked (backup)" || v.Pending != "" {
		t.Fatalf("after a failed stop: %+v", v)
	}
	// A result for an action no longer pending records nothing.
	if evs := v.Result(domain.ActionStop, true, "", "", nil, nil, ""); len(evs) != 0 {
		t.Fatalf("stale result recorded: %v", evs)
	}
}

func TestVMImpossibleTransitions(t *testing.T) {
	v := &domain.VM{ID: uuid.New()}
	evs, _ := domain.RequestVM("a1", domain.KindLXC, domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8}, "debian-12-ct", uuid.New(), "", nil)
	apply(v, evs)
	three := 3
	if _, err := v.Resize(&three, nil, nil); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("resize while provisioning: %v", err)
	}
	v = runningVM(t)
	small := 10
	if _, err := v.Resize(nil, nil, &small); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("shrinking a disk: %v", err)
	}
	if _, err := v.Act(domain.ActionStart); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("start a running VM: %v", err)
	}
	evs, _ = v.Act(domain.ActionDelete)
	apply(v, evs)
	apply(v, v.Result(domain.ActionDelete, true, "", "", nil, nil, ""))
	if _, err := v.Act(domain.ActionStart); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("start a deleted VM: %v", err)
	}
	var ve *domain.ValidationError
	if _, err := v.Act("explode"); !errors.As(err, &ve) {
		t.Fatalf("unknown action: %v", err)
	}
}

func TestVMAllocationCountsPendingGrowthAndNothingWhenGone(t *testing.T) {
	v := runningVM(t)
	four, forty := 4, 40
	evs, err := v.Resize(&four, nil, &forty)
	if err != nil {
		t.Fatal(err)
	}
	apply(v, evs)
	if a := v.Allocated(); a.Cores != 4 || a.DiskGB != 40 || a.MemoryMB != 2048 {
		t.Fatalf("pending growth not counted: %+v", a)
	}
	apply(v, v.Result(domain.ActionResize, false, "", "no space", nil, nil, ""))
	if a := v.Allocated(); a.Cores != 2 || a.DiskGB != 20 {
		t.Fatalf("failed resize still counted: %+v", a)
	}
	failed := &domain.VM{ID: uuid.New()}
	evs, _ = domain.RequestVM("f1", domain.KindQEMU, domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8}, "debian-12", uuid.New(), "", nil)
	apply(failed, evs)
	if failed.Allocated().Cores != 1 {
		t.Fatal("a provisioning VM must count against the quota")
	}
	apply(failed, failed.Result(domain.ActionCreate, false, "", "clone failed", nil, nil, ""))
	if failed.Allocated() != (domain.VMSpec{}) {
		t.Fatalf("a VM whose creation failed still counts: %+v", failed.Allocated())
	}
}

func TestVMDriftAndTimeout(t *testing.T) {
	v := runningVM(t)
	if evs := v.Observe(domain.VMRunning, time.Time{}); len(evs) != 0 {
		t.Fatal("no drift when Proxmox agrees")
	}
	apply(v, v.Observe(domain.VMStopped, time.Time{}))
	if v.Status != domain.VMStopped {
		t.Fatalf("drift not applied: %s", v.Status)
	}
	evs, _ := v.Act(domain.ActionStart)
	apply(v, evs)
	if evs := v.Observe(domain.VMDeleted, time.Time{}); len(evs) != 0 {
		t.Fatal("no drift judged while an action is pending")
	}
	apply(v, v.TimeOut(time.Minute))
	if v.Status != domain.VMFailed || v.Pending != "" || v.LastError == "" {
		t.Fatalf("after a timeout: %+v", v)
	}
}

func TestRequestVMValidation(t *testing.T) {
	_, err := domain.RequestVM("Bad_Name", "vmware", domain.VMSpec{Cores: 0, MemoryMB: 1, DiskGB: 0}, "", uuid.Nil, "", nil)
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a validation error, got %v", err)
	}
	for _, f := range []string{"name", "kind", "cores", "memory_mb", "disk_gb", "template"} {
		if ve.Fields[f] == "" {
			t.Errorf("no error for %s: %v", f, ve.Fields)
		}
	}
}
