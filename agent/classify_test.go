package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/luthermonson/go-proxmox"
)

func TestTransient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{errors.New("500 Internal Server Error (pvesim injected fault)"), true},
		{fmt.Errorf("list guests: %w", errors.New("500 Can't connect to 127.0.0.1:85 (Connection refused)")), true},
		{errors.New("500 can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout"), true},
		{errors.New("500 VM is locked (backup)"), true},
		{&taskError{Exit: "VM is locked (clone)"}, true},
		{&statusError{Code: 503, Status: "503 Service Unavailable"}, true},
		{&url.Error{Op: "Get", URL: "https://pve:8006", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, true},
		{&taskError{Exit: "start failed: QEMU exited with code 1"}, false},
		{errors.New("500 Configuration file 'nodes/pve1/qemu-server/1.conf' does not exist"), false},
		{errors.New("500 unable to create VM 100 - VM 100 already exists on node 'pve1'"), false},
		{errors.New("bad request: 400 Parameter verification failed. - {\"memory\":\"invalid\"}"), false},
		{errors.New("501 Method 'GET /x' is not part of the simulated API"), false},
		{proxmox.ErrNotAuthorized, false},
		{context.Canceled, false},
		{errors.New(`template "x" (qemu) does not exist on cluster c`), false},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%q) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestPVEMessage(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]string{
		errors.New("500 VM is locked (backup)"):                           "VM is locked (backup)",
		fmt.Errorf("config: %w", errors.New("500 VM 500 is running")):     "VM 500 is running",
		&taskError{Exit: "clone failed: out of space"}:                    "clone failed: out of space",
		fmt.Errorf("clone: %w", &taskError{Exit: "TASK ERROR"}):           "TASK ERROR",
		errors.New("no guest tagged accountdb-vm-x on any cluster"):       "no guest tagged accountdb-vm-x on any cluster",
		errors.New("bad request: 400 Parameter verification failed. - x"): "Parameter verification failed. - x",
	} {
		if got := pveMessage(err); got != want {
			t.Errorf("pveMessage(%q) = %q, want %q", err, got, want)
		}
	}
}

func TestGuestConfigReading(t *testing.T) {
	t.Parallel()
	if got := sizeGB("local-lvm:vm-100-disk-0,iothread=1,size=8G"); got != 8 {
		t.Errorf("8G: %d", got)
	}
	if got := sizeGB("local-lvm:vm-100-disk-0,size=1536M"); got != 2 {
		t.Errorf("1536M: %d", got)
	}
	if got := sizeGB("local-lvm:vm-100-disk-0,size=1T"); got != 1024 {
		t.Errorf("1T: %d", got)
	}
	if got := memoryOf("current=4096,shares=10"); got != 4096 {
		t.Errorf("memory property string: %d", got)
	}
	if got := memoryOf(float64(2048)); got != 2048 {
		t.Errorf("numeric memory: %d", got)
	}
	cfg := map[string]any{
		"ide2":  "local-lvm:vm-1-cloudinit,media=cdrom",
		"scsi1": "local-lvm:vm-1-disk-1,size=100G",
		"scsi0": "local-lvm:vm-1-disk-0,size=10G",
		"boot":  "order=ide2;scsi0;net0",
	}
	if k, gb := diskOf(kindQEMU, cfg); k != "scsi0" || gb != 10 {
		t.Errorf("boot disk %s %d", k, gb)
	}
	delete(cfg, "boot")
	if k, _ := diskOf(kindQEMU, cfg); k != "scsi0" {
		t.Errorf("first disk %s", k)
	}
	if k, gb := diskOf(kindLXC, map[string]any{"rootfs": "local-lvm:vm-1-disk-0,size=4G"}); k != "rootfs" || gb != 4 {
		t.Errorf("rootfs %s %d", k, gb)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	for attempt := 1; attempt < 20; attempt++ {
		d := backoff(attempt, 100*time.Millisecond, 2*time.Second)
		ceiling := min(100*time.Millisecond<<(attempt-1), 2*time.Second)
		if d < ceiling/2 || d > ceiling {
			t.Fatalf("attempt %d: %s outside [%s, %s]", attempt, d, ceiling/2, ceiling)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); err == nil {
		t.Fatal("a config without JetStream or vault accepted")
	}
}
