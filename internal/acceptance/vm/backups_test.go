package vm_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/accountdb/accountdb/pvesim"
)

type snapshotItem struct {
	Name        string    `json:"name"`
	Parent      *string   `json:"parent"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	VMState     bool      `json:"vmstate"`
	Status      string    `json:"status"`
}

type backupItem struct {
	ID        string `json:"id"`
	VMID      string `json:"vm_id"`
	VolumeID  string `json:"volume_id"`
	SizeBytes int64  `json:"size_bytes"`
	Verified  bool   `json:"verified"`
	Mode      string `json:"mode"`
	Storage   string `json:"storage"`
	Note      string `json:"note"`
	Status    string `json:"status"`
	Error     string `json:"error"`
}

func (en *env) snapshots(t *testing.T, id string) []snapshotItem {
	t.Helper()
	var l struct{ Items []snapshotItem }
	if r := en.s.Do(t, en.token, http.MethodGet, "/v1/vms/"+id+"/snapshots", nil, &l); r.StatusCode != http.StatusOK {
		t.Fatalf("snapshots: %d %s", r.StatusCode, r.Body)
	}
	return l.Items
}

func (en *env) backup(t *testing.T, path string) (backupItem, int) {
	t.Helper()
	var b backupItem
	r := en.s.Do(t, en.token, http.MethodGet, path, nil, &b)
	return b, r.StatusCode
}

// waitBackup polls a backup until it has status.
func (en *env) waitBackup(t *testing.T, location, status string) backupItem {
	t.Helper()
	var b backupItem
	stacktest.Eventually(t, 20*time.Second, "backup "+location+" "+status, func() bool {
		var code int
		b, code = en.backup(t, location)
		return code == http.StatusOK && b.Status == status
	})
	return b
}

func (en *env) expect(t *testing.T, method, path string, body any, status int, code string) {
	t.Helper()
	var p struct{ Code string }
	r := en.s.Do(t, en.token, method, path, body, nil)
	_ = json.Unmarshal(r.Body, &p)
	if r.StatusCode != status || (code != "" && p.Code != code) {
		t.Fatalf("%s %s: %d %s, want %d %s", method, path, r.StatusCode, r.Body, status, code)
	}
}

// TestSnapshotsWholeOnProxmox: snapshots listed with parent, description,
// time and vmstate; the tenant's max_snapshots_per_vm; a rollback stops a
// guest whose snapshot saved no RAM; a deletion re-parents; each really
// happens on pvesim, and another tenant sees none of it.
func TestSnapshotsWholeOnProxmox(t *testing.T) {
	e := newRealEnv(t, stacktest.Options{}, pvesim.Options{})
	q := roomyQuota
	q.MaxSnapshotsPerVM = 2
	en := e.tenant(t, q)
	a := en.create(t, "snappy")
	v := en.waitStatus(t, a.ID, "running")
	base := "/v1/vms/" + a.ID + "/snapshots"

	en.do(t, http.MethodPost, base, map[string]any{"name": "first", "description": "before the upgrade"})
	stacktest.Eventually(t, 15*time.Second, "first snapshot ready", func() bool {
		l := en.snapshots(t, a.ID)
		return len(l) == 1 && l[0].Status == "ready"
	})
	en.do(t, http.MethodPost, base, map[string]any{"name": "second", "vmstate": true})
	var list []snapshotItem
	stacktest.Eventually(t, 15*time.Second, "second snapshot ready", func() bool {
		list = en.snapshots(t, a.ID)
		return len(list) == 2 && list[1].Status == "ready"
	})
	if f, s := list[0], list[1]; f.Name != "first" || f.Parent != nil || f.Description != "before the upgrade" || f.VMState ||
		s.Name != "second" || s.Parent == nil || *s.Parent != "first" || !s.VMState || f.CreatedAt.IsZero() {
		t.Fatalf("snapshots %+v", list)
	}
	if got := e.sim.Simulator().SnapshotNames(v.VMID); !slices.Equal(got, []string{"first", "second"}) {
		t.Fatalf("on pvesim: %v", got)
	}
	en.expect(t, http.MethodPost, base, map[string]any{"name": "third"}, http.StatusUnprocessableEntity, "quota_exceeded")
	en.expect(t, http.MethodPost, base+"/nope/rollback", nil, http.StatusNotFound, "not_found")
	en.expect(t, http.MethodPost, base, map[string]any{"name": "x", "bogus": 1}, http.StatusBadRequest, "")

	// Rolled back to a snapshot without RAM: Proxmox leaves the guest stopped.
	en.do(t, http.MethodPost, base+"/first/rollback", nil)
	en.waitStatus(t, a.ID, "stopped")
	if g, _ := e.sim.Simulator().Guest(v.VMID); g.Status != pvesim.StatusStopped || g.Lock != "" {
		t.Fatalf("after rollback on pvesim: %+v", g)
	}
	en.do(t, http.MethodDelete, base+"/first", nil)
	stacktest.Eventually(t, 15*time.Second, "first deleted", func() bool {
		list = en.snapshots(t, a.ID)
		return len(list) == 1
	})
	if list[0].Name != "second" || list[0].Parent != nil {
		t.Fatalf("after deleting the parent: %+v", list)
	}
	if got := e.sim.Simulator().SnapshotNames(v.VMID); !slices.Equal(got, []string{"second"}) {
		t.Fatalf("on pvesim after delete: %v", got)
	}
	// The VM's own read model has its own projector: wait for it too.
	var vmSnaps []string
	stacktest.Eventually(t, 15*time.Second, "the VM model without the deleted snapshot", func() bool {
		vmSnaps = en.get(t, a.ID, 0).Snapshots
		return slices.Equal(vmSnaps, []string{"second"})
	})

	other := e.tenant(t, roomyQuota)
	other.expect(t, http.MethodGet, base, nil, http.StatusNotFound, "not_found")
	other.expect(t, http.MethodPost, base+"/second/rollback", nil, http.StatusNotFound, "not_found")
	other.expect(t, http.MethodDelete, base+"/second", nil, http.StatusNotFound, "not_found")

	var types []string
	for _, ev := range en.history(t, a.ID) {
		types = append(types, ev.Type)
	}
	for _, want := range []string{"vm_snapshot_rollback_requested", "vm_snapshot_rolled_back", "vm_snapshot_delete_requested", "vm_snapshot_deleted"} {
		if !slices.Contains(types, want) {
			t.Fatalf("history lacks %s: %v", want, types)
		}
	}
}

// TestBackupsOnProxmox: a backup to the cluster's backup storage; one to a
// full storage fails with Proxmox's message, shown on the VM, and leaves
// the first; max_backups_gb; the archive metered in /v1/usage with its
// size; restore in place needs the VM's name; restore into a new VM makes
// a second guest from the archive; deletion removes the archive and ends
// its metering.
func TestBackupsOnProxmox(t *testing.T) {
	e := newRealEnv(t, stacktest.Options{}, pvesim.Options{})
	// Platform admins choose the cluster's backup storage.
	admin := e.s.Login(t, e.s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)).AccessToken
	var set accepted
	if r := e.s.Do(t, admin, http.MethodPut, "/v1/clusters/"+e.cluster.String()+"/backup-storage", map[string]string{"storage": "backup-nfs"}, &set); r.StatusCode != http.StatusAccepted {
		t.Fatalf("backup storage: %d %s", r.StatusCode, r.Body)
	}
	if r := e.s.Do(t, admin, http.MethodPut, "/v1/clusters/"+e.cluster.String()+"/backup-storage", map[string]string{"storage": "no/such"}, nil); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("an invalid storage id: %d %s", r.StatusCode, r.Body)
	}
	var clusters struct {
		Items []struct {
			ID            string `json:"id"`
			BackupStorage string `json:"backup_storage"`
		}
	}
	e.s.Do(t, admin, http.MethodGet, "/v1/clusters", nil, &clusters, "X-Consistency-Token", strconv.FormatInt(set.Position, 10))
	if len(clusters.Items) != 1 || clusters.Items[0].BackupStorage != "backup-nfs" {
		t.Fatalf("clusters %+v", clusters.Items)
	}
	q := roomyQuota
	q.MaxBackupsGB = 1 // one archive of a 20 GB disk (2.5 GB on pvesim) fills it
	en := e.tenant(t, q)
	a := en.create(t, "web-1")
	v := en.waitStatus(t, a.ID, "running")
	backups := "/v1/vms/" + a.ID + "/backups"

	en.expect(t, http.MethodPost, backups, map[string]any{"mode": "snapshot", "storage": "local"}, http.StatusBadRequest, "validation_failed")
	en.expect(t, http.MethodPost, backups, map[string]any{"mode": "hibernate"}, http.StatusBadRequest, "validation_failed")

	// The storage is full: the backup fails with vzdump's message.
	if err := e.sim.Simulator().FillStorage("backup-nfs", true); err != nil {
		t.Fatal(err)
	}
	r := en.s.Do(t, en.token, http.MethodPost, backups, map[string]any{"mode": "snapshot", "note": "doomed"}, nil)
	if r.StatusCode != http.StatusAccepted || !strings.HasPrefix(r.Header.Get("Location"), "/v1/backups/") {
		t.Fatalf("backup: %d %s %q", r.StatusCode, r.Body, r.Header.Get("Location"))
	}
	failed := en.waitBackup(t, r.Header.Get("Location"), "failed")
	if !strings.Contains(failed.Error, "No space left on device") || failed.Note != "doomed" {
		t.Fatalf("failed backup: %+v", failed)
	}
	// The VM read model has its own projector: it may show the failure a
	// moment after the backups model does.
	var got vm
	stacktest.Eventually(t, 15*time.Second, "the VM to show the backup's error", func() bool {
		got = vm{}
		r := en.s.Do(t, en.token, http.MethodGet, "/v1/vms/"+a.ID, nil, &got)
		return r.StatusCode == http.StatusOK && got.Status == "running" && strings.Contains(got.LastError, "Backup of VM")
	})
	if !strings.Contains(got.LastError, "No space left on device") {
		t.Fatalf("VM's last error: %q", got.LastError)
	}
	if err := e.sim.Simulator().FillStorage("backup-nfs", false); err != nil {
		t.Fatal(err)
	}

	r = en.s.Do(t, en.token, http.MethodPost, backups, map[string]any{"mode": "stop", "note": "nightly"}, nil)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("backup: %d %s", r.StatusCode, r.Body)
	}
	good := en.waitBackup(t, r.Header.Get("Location"), "available")
	if !strings.HasPrefix(good.VolumeID, "backup-nfs:backup/vzdump-qemu-") || good.SizeBytes <= 0 || !good.Verified || good.Mode != "stop" || good.Storage != "backup-nfs" {
		t.Fatalf("backup: %+v", good)
	}
	if vols := e.sim.Simulator().BackupVolumes(); !slices.Equal(vols, []string{good.VolumeID}) {
		t.Fatalf("archives on pvesim: %v", vols)
	}
	// Again the VM read model may show the backup's outcome a moment after
	// the backups model does: it ran, with the failure's error, before.
	stacktest.Eventually(t, 15*time.Second, "a successful backup to clear the VM's error", func() bool {
		got = vm{}
		r := en.s.Do(t, en.token, http.MethodGet, "/v1/vms/"+a.ID, nil, &got)
		return r.StatusCode == http.StatusOK && got.Status == "running" && got.LastError == ""
	})
	var l struct{ Items []backupItem }
	if r := en.s.Do(t, en.token, http.MethodGet, backups, nil, &l); r.StatusCode != 200 || len(l.Items) != 2 || l.Items[0].ID != good.ID {
		t.Fatalf("VM's backups: %d %+v", r.StatusCode, l.Items)
	}
	en.expect(t, http.MethodPost, backups, map[string]any{"mode": "snapshot"}, http.StatusUnprocessableEntity, "quota_exceeded")
	// The archive is metered in the tenant's usage, with its size.
	tenantAdmin := e.s.Login(t, e.s.User(t, en.tenID, auth.RoleTenantAdmin)).AccessToken
	expectBackupMetered(t, e.s, tenantAdmin, a.ID, good.SizeBytes)

	restore := "/v1/backups/" + good.ID + "/restore"
	en.expect(t, http.MethodPost, restore, map[string]any{"target": "in_place"}, http.StatusUnprocessableEntity, "confirmation_required")
	en.expect(t, http.MethodPost, restore, map[string]any{"target": "in_place", "confirm_name": "web-2"}, http.StatusUnprocessableEntity, "confirmation_required")
	en.expect(t, http.MethodPost, restore, map[string]any{"target": "elsewhere"}, http.StatusBadRequest, "validation_failed")
	other := e.tenant(t, roomyQuota)
	other.expect(t, http.MethodPost, restore, map[string]any{"target": "in_place", "confirm_name": "web-1"}, http.StatusNotFound, "not_found")
	other.expect(t, http.MethodGet, "/v1/backups/"+good.ID, nil, http.StatusNotFound, "not_found")

	en.do(t, http.MethodPost, restore, map[string]any{"target": "in_place", "confirm_name": "web-1"})
	en.waitStatus(t, a.ID, "stopped")
	if g, ok := e.sim.Simulator().Guest(v.VMID); !ok || !strings.Contains(g.Config["tags"], a.ID) || g.Lock != "" {
		t.Fatalf("restored guest: %+v", g)
	}

	var created accepted
	if r := en.s.Do(t, en.token, http.MethodPost, restore, map[string]any{"target": "new", "name": "web-copy"}, &created); r.StatusCode != http.StatusAccepted {
		t.Fatalf("restore new: %d %s", r.StatusCode, r.Body)
	}
	copyVM := en.waitStatus(t, created.ID, "running")
	if copyVM.Name != "web-copy" || copyVM.VMID == v.VMID {
		t.Fatalf("restored copy: %+v", copyVM)
	}
	if g, ok := e.sim.Simulator().Guest(copyVM.VMID); !ok || !strings.Contains(g.Config["tags"], created.ID) || strings.Contains(g.Config["tags"], a.ID) {
		t.Fatalf("copy's guest: %+v", g)
	}

	en.do(t, http.MethodDelete, "/v1/backups/"+good.ID, nil)
	stacktest.Eventually(t, 15*time.Second, "backup gone", func() bool {
		_, code := en.backup(t, "/v1/backups/"+good.ID)
		return code == http.StatusNotFound
	})
	if vols := e.sim.Simulator().BackupVolumes(); len(vols) != 0 {
		t.Fatalf("archives left on pvesim: %v", vols)
	}
	expectBackupNoLongerMetered(t, e.s, tenantAdmin, a.ID)
	var types []string
	for _, ev := range en.history(t, a.ID) {
		types = append(types, ev.Type)
	}
	for _, want := range []string{"vm_backup_requested", "vm_action_failed", "vm_backup_created", "vm_restore_requested", "vm_restored",
		"vm_backup_delete_requested", "vm_backup_deleted"} {
		if !slices.Contains(types, want) {
			t.Fatalf("history lacks %s: %v", want, types)
		}
	}
}

// TestRestoreSurvivesAnAgentCrash: the agent dies while a restore into a
// new VM runs; the next agent finds the guest the restore tagged, and one
// guest exists for the VM.
func TestRestoreSurvivesAnAgentCrash(t *testing.T) {
	e := newRealEnv(t, stacktest.Options{}, pvesim.Options{TimeScale: 200 * time.Millisecond})
	en := e.tenant(t, roomyQuota)
	a := en.create(t, "source")
	en.waitStatus(t, a.ID, "running")
	r := en.s.Do(t, en.token, http.MethodPost, "/v1/vms/"+a.ID+"/backups", map[string]any{"mode": "snapshot"}, nil)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("backup: %d %s", r.StatusCode, r.Body)
	}
	b := en.waitBackup(t, r.Header.Get("Location"), "available")
	var created accepted
	if r := en.s.Do(t, en.token, http.MethodPost, "/v1/backups/"+b.ID+"/restore", map[string]any{"target": "new", "name": "phoenix"}, &created); r.StatusCode != http.StatusAccepted {
		t.Fatalf("restore: %d %s", r.StatusCode, r.Body)
	}
	stacktest.Eventually(t, 15*time.Second, "the restore to start on pvesim", func() bool {
		for _, g := range e.sim.Simulator().Guests() {
			if strings.Contains(g.Config["tags"], created.ID) {
				return true
			}
		}
		return false
	})
	e.killAgent()
	e.startAgent(t)
	en.waitStatus(t, created.ID, "running")
	n := 0
	for _, g := range e.sim.Simulator().Guests() {
		if strings.Contains(g.Config["tags"], created.ID) || (g.Name == "phoenix" && !g.Template) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d guests for one restored VM", n)
	}
	if _, err := uuid.Parse(created.ID); err != nil {
		t.Fatal(err)
	}
}

// TestBackupRoutesNeedTheirPermissions: a viewer reads snapshots, backups
// and schedules but changes none; an operator (vm:snapshot) takes backups
// and snapshots but neither restores, deletes a backup nor changes a
// schedule, which overwrite or delete data (vm:delete).
func TestBackupRoutesNeedTheirPermissions(t *testing.T) {
	e := newEnv(t, stacktest.Options{}, roomyQuota)
	a := e.create(t, "guarded")
	backup := "/v1/backups/" + uuid.NewString()
	schedule := "/v1/backup-schedules/" + uuid.NewString()
	for role, forbidden := range map[string][][2]string{
		auth.RoleViewer: {
			{http.MethodPost, "/v1/vms/" + a.ID + "/snapshots"}, {http.MethodPost, "/v1/vms/" + a.ID + "/snapshots/x1/rollback"},
			{http.MethodDelete, "/v1/vms/" + a.ID + "/snapshots/x1"}, {http.MethodPost, "/v1/vms/" + a.ID + "/backups"},
			{http.MethodDelete, backup}, {http.MethodPost, backup + "/restore"}, {http.MethodPost, "/v1/backup-schedules"},
			{http.MethodPatch, schedule}, {http.MethodDelete, schedule},
		},
		auth.RoleOperator: {
			{http.MethodDelete, backup}, {http.MethodPost, backup + "/restore"}, {http.MethodPost, "/v1/backup-schedules"},
			{http.MethodPatch, schedule}, {http.MethodDelete, schedule},
		},
	} {
		token := e.s.Login(t, e.s.User(t, e.tenID, role)).AccessToken
		for _, c := range forbidden {
			if r := e.s.Do(t, token, c[0], c[1], map[string]any{}, nil); r.StatusCode != http.StatusForbidden {
				t.Errorf("%s: %s %s: %d %s", role, c[0], c[1], r.StatusCode, r.Body)
			}
		}
		for _, path := range []string{"/v1/vms/" + a.ID + "/backups", "/v1/backups", "/v1/backup-schedules"} {
			// The consistency token waits for the VM's read model: the
			// per-VM list answers 404 for a VM the projector has not seen.
			if r := e.s.Do(t, token, http.MethodGet, path, nil, nil, "X-Consistency-Token", strconv.FormatInt(a.Position, 10)); r.StatusCode != http.StatusOK {
				t.Errorf("%s: GET %s: %d %s", role, path, r.StatusCode, r.Body)
			}
		}
	}
}

// TestTenantQuotaHasSnapshotAndBackupLimits: the tenant quota shows
// max_snapshots_per_vm, max_backups_gb and max_ipv4 (their defaults when not
// set) and a platform admin changes them.
func TestTenantQuotaHasSnapshotAndBackupLimits(t *testing.T) {
	e := newEnv(t, stacktest.Options{}, roomyQuota)
	admin := e.s.Login(t, e.s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)).AccessToken
	type quota struct {
		MaxDiskGB         int `json:"max_disk_gb"`
		MaxSnapshotsPerVM int `json:"max_snapshots_per_vm"`
		MaxBackupsGB      int `json:"max_backups_gb"`
		MaxVMs            int `json:"max_vms"`
		MaxIPv4           int `json:"max_ipv4"`
	}
	get := func(token int64) quota {
		var tn struct{ Quota quota }
		if r := e.s.Do(t, admin, http.MethodGet, "/v1/tenants/"+e.tenID.String(), nil, &tn, "X-Consistency-Token", strconv.FormatInt(token, 10)); r.StatusCode != http.StatusOK {
			t.Fatalf("tenant: %d %s", r.StatusCode, r.Body)
		}
		return tn.Quota
	}
	if q := get(0); q.MaxSnapshotsPerVM != domain.DefaultMaxSnapshotsPerVM || q.MaxBackupsGB != 4*q.MaxDiskGB || q.MaxIPv4 != q.MaxVMs {
		t.Fatalf("defaults %+v", q)
	}
	var a accepted
	body := map[string]any{"quota": map[string]int{"max_vms": 50, "max_cores": 200, "max_memory_mb": 1 << 20, "max_disk_gb": 100000,
		"max_snapshots_per_vm": 3, "max_backups_gb": 500, "max_ipv4": 7}}
	if r := e.s.Do(t, admin, http.MethodPatch, "/v1/tenants/"+e.tenID.String(), body, &a); r.StatusCode != http.StatusAccepted {
		t.Fatalf("patch: %d %s", r.StatusCode, r.Body)
	}
	if q := get(a.Position); q.MaxSnapshotsPerVM != 3 || q.MaxBackupsGB != 500 || q.MaxIPv4 != 7 {
		t.Fatalf("after patch %+v", q)
	}
	body["quota"].(map[string]int)["max_backups_gb"] = -1
	if r := e.s.Do(t, admin, http.MethodPatch, "/v1/tenants/"+e.tenID.String(), body, nil); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("a negative limit: %d %s", r.StatusCode, r.Body)
	}
}
