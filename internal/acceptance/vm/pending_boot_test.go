package vm_test

import (
	"crypto/tls"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/luthermonson/go-proxmox"

	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/accountdb/accountdb/pvesim"
)

// TestPendingChangesClearedByABootOnProxmox: cloud-init changes apply at
// the guest's next boot, whoever boots it. A reboot by hand on Proxmox
// (the VM stays running; reconciliation tells it from the guest's uptime)
// records vm_cloud_init_applied; a stop and a start by hand are drift, and
// the start clears them too.
func TestPendingChangesClearedByABootOnProxmox(t *testing.T) {
	e := newCIEnv(t)
	en := e.tenant(t, roomyQuota)
	var a accepted
	if r := en.s.Do(t, en.token, http.MethodPost, "/v1/vms", map[string]any{"name": "web-p", "kind": "qemu", "cores": 1, "memory_mb": 1024,
		"disk_gb": 10, "template": "debian-12", "cloud_init": map[string]any{"user": "ada"}}, &a); r.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.StatusCode, r.Body)
	}
	vmid := en.waitStatus(t, a.ID, "running").VMID
	sim := e.sim.Simulator()
	pending := func(ns string) {
		t.Helper()
		en.do(t, http.MethodPatch, "/v1/vms/"+a.ID, map[string]any{"cloud_init": map[string]any{"nameservers": []string{ns}}})
		stacktest.Eventually(t, 15*time.Second, "pending changes", func() bool { return en.ciGet(t, a.ID).PendingChanges })
		// Proxmox's uptime counts whole seconds, and the core judges a boot
		// within a second of the change as not after it.
		time.Sleep(2 * time.Second)
	}

	pending("198.51.100.53")
	g, _ := sim.Guest(vmid)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	c := proxmox.NewClient(e.sim.URL(), proxmox.WithHTTPClient(hc), proxmox.WithAPIToken(pvesim.DefaultTokenID, pvesim.DefaultTokenSecret))
	if err := c.Post(t.Context(), "/nodes/"+g.Node+"/qemu/"+strconv.Itoa(vmid)+"/status/reboot", nil, nil); err != nil {
		t.Fatalf("reboot by hand: %v", err)
	}
	stacktest.Eventually(t, 15*time.Second, "the reboot by hand to clear pending changes", func() bool {
		v := en.ciGet(t, a.ID)
		return v.Status == "running" && !v.PendingChanges
	})
	applied := 0
	for _, ev := range en.history(t, a.ID) {
		if ev.Type == "vm_cloud_init_applied" {
			applied++
		}
	}
	if applied != 1 {
		t.Fatalf("%d vm_cloud_init_applied events after one reboot by hand", applied)
	}

	pending("198.51.100.54")
	if err := sim.SetGuestStatus(vmid, pvesim.StatusStopped); err != nil {
		t.Fatal(err)
	}
	en.waitStatus(t, a.ID, "stopped")
	if !en.ciGet(t, a.ID).PendingChanges {
		t.Fatal("a stop by hand cleared pending changes")
	}
	if err := sim.SetGuestStatus(vmid, pvesim.StatusRunning); err != nil {
		t.Fatal(err)
	}
	stacktest.Eventually(t, 15*time.Second, "the start by hand to clear pending changes", func() bool {
		v := en.ciGet(t, a.ID)
		return v.Status == "running" && !v.PendingChanges
	})
}
