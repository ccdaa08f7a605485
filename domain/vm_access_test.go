package domain_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/accountdb/accountdb/domain"
)

func strp(s string) *string { return &s }

// A cloud-init change is the VM's once Proxmox has it; the guest has it
// (pending_changes false) after its next start or reboot. A change that
// leaves the password out keeps its hash.
func TestCloudInitUpdatePendsUntilBoot(t *testing.T) {
	v := runningVM(t)
	hashed := 0
	hash := func(string) string { hashed++; return "$6$salt$hash" }
	evs, err := v.UpdateCloudInit(domain.CloudInitChange{User: strp("ada"), Password: strp("a long enough password")}, hash)
	if err != nil || hashed != 1 {
		t.Fatalf("update: %v %v (hashed %d)", evs, err, hashed)
	}
	apply(v, evs)
	if v.CloudInit != nil || v.PendingCloudInit == nil || v.Pending != domain.ActionConfigure {
		t.Fatalf("requested: %+v %+v %q", v.CloudInit, v.PendingCloudInit, v.Pending)
	}
	apply(v, v.Result(domain.ActionConfigure, true, "UPID:x", "", nil, nil, ""))
	if v.CloudInit == nil || v.CloudInit.User != "ada" || v.CloudInit.Hostname != "web-1" || v.CloudInit.PasswordHash != "$6$salt$hash" || !v.PendingChanges {
		t.Fatalf("configured: %+v, pending %v", v.CloudInit, v.PendingChanges)
	}

	evs, err = v.UpdateCloudInit(domain.CloudInitChange{Nameservers: &[]string{"192.0.2.53"}}, hash)
	if err != nil || hashed != 1 || evs[0].(*domain.VMCloudInitUpdateRequested).CloudInit.PasswordHash != "$6$salt$hash" {
		t.Fatalf("a change without a password: %+v %v (hashed %d)", evs, err, hashed)
	}
	if again, err := v.UpdateCloudInit(domain.CloudInitChange{User: strp("ada")}, hash); err != nil || again != nil {
		t.Fatalf("no change: %v %v", again, err)
	}
	apply(v, v.Result(domain.ActionConfigure, false, "", "boom", nil, nil, "")) // nothing pending: ignored
	apply(v, []domain.Event{&domain.VMActionRequested{Action: domain.ActionReboot}})
	apply(v, v.Result(domain.ActionReboot, true, "UPID:x", "", nil, nil, ""))
	if v.PendingChanges {
		t.Fatal("a reboot leaves pending changes")
	}
}

// pendingVM is a running VM with a cloud-init change on Proxmox its guest
// has not booted with, written at the returned time.
func pendingVM(t *testing.T) (*domain.VM, time.Time) {
	t.Helper()
	v := runningVM(t)
	evs, err := v.UpdateCloudInit(domain.CloudInitChange{User: strp("ada")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	apply(v, evs)
	written := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, e := range v.Result(domain.ActionConfigure, true, "UPID:x", "", nil, nil, "") {
		v.Apply(e, written)
	}
	if !v.PendingChanges {
		t.Fatal("no pending changes after a configure")
	}
	return v, written
}

// Pending changes are read at the guest's next boot, whoever booted it: a
// guest seen rebooted on Proxmox after they were written (its boot time
// from its uptime), or seen started after AccountDB believed it stopped.
func TestPendingChangesClearedByABootOutsideAccountDB(t *testing.T) {
	v, written := pendingVM(t)
	for _, booted := range []time.Time{{}, written.Add(-time.Second), written} {
		if evs := v.Observe(domain.VMRunning, booted); len(evs) != 0 {
			t.Fatalf("a guest booted at %v, changes written at %v: %+v", booted, written, evs)
		}
	}
	if evs := v.Observe(domain.VMStopped, written.Add(time.Minute)); len(evs) != 1 || evs[0].EventType() != "vm_drift_detected" {
		t.Fatalf("stopped by hand: %+v", evs)
	}
	evs := v.Observe(domain.VMRunning, written.Add(time.Second))
	if len(evs) != 1 || !evs[0].(*domain.VMCloudInitApplied).BootedAt.Equal(written.Add(time.Second)) {
		t.Fatalf("rebooted by hand: %+v", evs)
	}
	apply(v, evs)
	if v.PendingChanges || v.Status != domain.VMRunning {
		t.Fatalf("after the boot: pending %v, %s", v.PendingChanges, v.Status)
	}
	if again := v.Observe(domain.VMRunning, written.Add(time.Hour)); len(again) != 0 {
		t.Fatalf("nothing pending any more: %+v", again)
	}

	v, _ = pendingVM(t)
	apply(v, v.Observe(domain.VMStopped, time.Time{}))
	if !v.PendingChanges {
		t.Fatal("a stop by hand is no boot")
	}
	apply(v, v.Observe(domain.VMRunning, time.Time{}))
	if v.PendingChanges || v.Status != domain.VMRunning {
		t.Fatalf("started by hand: pending %v, %s", v.PendingChanges, v.Status)
	}
}

// A container takes only hostname and DNS; bad settings name their field.
func TestCloudInitUpdateRefusals(t *testing.T) {
	v := runningVM(t)
	v.Kind = domain.KindLXC
	var ve *domain.ValidationError
	if _, err := v.UpdateCloudInit(domain.CloudInitChange{SSHKeys: &[]string{"ssh-ed25519 AAAA"}}, nil); !errors.As(err, &ve) || ve.Fields["cloud_init.ssh_keys"] == "" {
		t.Fatalf("keys for a container: %v", err)
	}
	v.Kind = domain.KindQEMU
	if _, err := v.UpdateCloudInit(domain.CloudInitChange{Nameservers: &[]string{"dns.example"}}, nil); !errors.As(err, &ve) || ve.Fields["cloud_init.nameservers[0]"] == "" {
		t.Fatalf("a bad nameserver: %v", err)
	}
}

// A rebuild keeps the VM's settings, records each step once, and leaves the
// VM running where the agent placed it; a failed one leaves it failed.
func TestRebuildSteps(t *testing.T) {
	v := runningVM(t)
	ci := &domain.CloudInit{Hostname: "web-1", User: "ada"}
	v.CloudInit = ci
	evs, err := v.Rebuild("ubuntu-24.04")
	if err != nil {
		t.Fatal(err)
	}
	r := evs[0].(*domain.VMRebuildRequested)
	if r.Template != "ubuntu-24.04" || r.VMID != 101 || r.Node != "pve1" || r.CloudInit != ci || r.Name != "web-1" {
		t.Fatalf("request %+v", r)
	}
	apply(v, evs)
	if v.Status != domain.VMProvisioning || v.Pending != domain.ActionRebuild {
		t.Fatalf("rebuilding: %s %q", v.Status, v.Pending)
	}
	if _, err := v.Rebuild(""); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("a second rebuild while one runs: %v", err)
	}
	for _, step := range []string{domain.RebuildDestroyed, domain.RebuildDestroyed, domain.RebuildCloned, "unknown"} {
		apply(v, v.RebuildStep(step, "pve2", 202, ""))
	}
	if !slices.Equal(v.RebuildDone, []string{domain.RebuildDestroyed, domain.RebuildCloned}) || v.VMID != 202 {
		t.Fatalf("steps %v, vmid %d", v.RebuildDone, v.VMID)
	}
	apply(v, v.Result(domain.ActionRebuild, true, "UPID:y", "", &domain.VMProvisioned{Node: "pve2", VMID: 202}, nil, ""))
	if v.Status != domain.VMRunning || v.Pending != "" || v.Template != "ubuntu-24.04" || v.VMID != 202 || v.RebuildDone != nil {
		t.Fatalf("rebuilt: %+v", v)
	}
	if evs := v.RebuildStep(domain.RebuildConfigured, "", 0, ""); evs != nil {
		t.Fatalf("a step after the rebuild: %v", evs)
	}

	evs, _ = v.Rebuild("")
	apply(v, evs)
	apply(v, v.Result(domain.ActionRebuild, false, "", "clone failed", nil, nil, ""))
	if v.Status != domain.VMFailed || v.Allocated() == (domain.VMSpec{}) {
		t.Fatalf("failed rebuild: %s, allocated %+v", v.Status, v.Allocated())
	}
	if evs, err := v.Rebuild(""); err != nil || len(evs) != 1 {
		t.Fatalf("a failed VM may be rebuilt: %v", err)
	}
}
