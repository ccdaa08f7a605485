package vm_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/google/uuid"
)

// TestLifecycleThroughTheProtocol drives a VM through every action with the
// agent's results published by hand, and checks the read model and history.
func TestLifecycleThroughTheProtocol(t *testing.T) {
	e := newEnv(t, stacktest.Options{}, roomyQuota)
	a := e.create(t, "web-1")
	v := e.get(t, a.ID, a.Position)
	if v.Status != "provisioning" || v.Cores != 2 {
		t.Fatalf("after create: %+v", v)
	}
	// Impossible while provisioning.
	r := e.s.Do(t, e.token, http.MethodPost, "/v1/vms/"+a.ID+"/actions/start", nil, nil)
	if r.StatusCode != http.StatusUnprocessableEntity || r.Problem(t)["code"] != "invalid_state" {
		t.Fatalf("start while provisioning: %d %s", r.StatusCode, r.Body)
	}
	r = e.s.Do(t, e.token, http.MethodPatch, "/v1/vms/"+a.ID, map[string]int{"cores": 4}, nil)
	if r.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("resize while provisioning: %d %s", r.StatusCode, r.Body)
	}

	e.succeed(t, a.ID, domain.ActionCreate, func(r *protocol.Result) {
		r.ClusterID, r.Node, r.PVEVMID = e.agent.cluster, "pve1", 123456
	})
	v = e.waitStatus(t, a.ID, "running")
	if v.Node != "pve1" || v.VMID != 123456 {
		t.Fatalf("placement not recorded: %+v", v)
	}

	var acc accepted
	if r := e.s.Do(t, e.token, http.MethodPatch, "/v1/vms/"+a.ID, map[string]int{"cores": 4, "disk_gb": 40}, &acc); r.StatusCode != http.StatusAccepted {
		t.Fatalf("resize: %d %s", r.StatusCode, r.Body)
	}
	if r := e.s.Do(t, e.token, http.MethodPatch, "/v1/vms/"+a.ID, map[string]int{"cores": 8}, nil); r.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("second resize while one is pending: %d %s", r.StatusCode, r.Body)
	}
	e.succeed(t, a.ID, domain.ActionResize, func(r *protocol.Result) { r.Cores, r.MemoryMB, r.DiskGB = 4, 2048, 40 })
	stacktest.Eventually(t, 10*time.Second, "resized", func() bool { v = e.get(t, a.ID, 0); return v.Cores == 4 && v.DiskGB == 40 })
	if r := e.s.Do(t, e.token, http.MethodPatch, "/v1/vms/"+a.ID, map[string]int{"disk_gb": 10}, nil); r.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("shrinking a disk: %d %s", r.StatusCode, r.Body)
	}

	if r := e.s.Do(t, e.token, http.MethodPost, "/v1/vms/"+a.ID+"/snapshots", map[string]string{"name": "before-upgrade"}, nil); r.StatusCode != http.StatusAccepted {
		t.Fatalf("snapshot: %d %s", r.StatusCode, r.Body)
	}
	e.succeed(t, a.ID, domain.ActionSnapshot, func(r *protocol.Result) { r.Snapshot = "before-upgrade" })
	stacktest.Eventually(t, 10*time.Second, "snapshot", func() bool { v = e.get(t, a.ID, 0); return len(v.Snapshots) == 1 })

	if r := e.s.Do(t, e.token, http.MethodPost, "/v1/vms/"+a.ID+"/actions/stop", nil, nil); r.StatusCode != http.StatusAccepted {
		t.Fatalf("stop: %d %s", r.StatusCode, r.Body)
	}
	e.waitStatus(t, a.ID, "stopping")
	e.succeed(t, a.ID, domain.ActionStop, nil)
	e.waitStatus(t, a.ID, "stopped")

	if r := e.s.Do(t, e.token, http.MethodDelete, "/v1/vms/"+a.ID, nil, nil); r.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %d %s", r.StatusCode, r.Body)
	}
	e.waitStatus(t, a.ID, "deleting")
	e.succeed(t, a.ID, domain.ActionDelete, nil)
	e.waitStatus(t, a.ID, "deleted")
	if r := e.s.Do(t, e.token, http.MethodPost, "/v1/vms/"+a.ID+"/actions/start", nil, nil); r.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("start a deleted VM: %d %s", r.StatusCode, r.Body)
	}

	want := []string{"vm_create_requested", "vm_provisioned", "vm_resize_requested", "vm_action_succeeded",
		"vm_snapshot_requested", "vm_action_succeeded", "vm_action_requested", "vm_action_succeeded",
		"vm_action_requested", "vm_action_succeeded"}
	h := e.history(t, a.ID)
	var got []string
	for _, ev := range h {
		got = append(got, ev.Type)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("history:\n got %v\nwant %v", got, want)
	}
	for i, ev := range h {
		if i%2 == 1 { // every result is caused by the request just before it
			if ev.CausationID == nil || *ev.CausationID != h[i-1].EventID.String() || ev.CorrelationID != h[i-1].CorrelationID {
				t.Fatalf("result %d (%s) not caused by its request: %+v", i, ev.Type, ev)
			}
		}
	}
}

// TestDuplicateResultIsRecordedOnce delivers one result twice, with distinct
// message ids so JetStream's own dedupe cannot hide it: one event.
func TestDuplicateResultIsRecordedOnce(t *testing.T) {
	e := newEnv(t, stacktest.Options{}, roomyQuota)
	a := e.create(t, "dup")
	req := e.lastRequest(t, a.ID)
	res := protocol.Result{RequestEventID: req.EventID, CorrelationID: req.CorrelationID, TenantID: e.tenID, VMID: uuid.MustParse(a.ID),
		Action: domain.ActionCreate, Succeeded: true, ClusterID: e.agent.cluster, Node: "pve2", PVEVMID: 222222}
	for i := range 2 {
		m, err := protocol.NewResultMsg(res)
		if err != nil {
			t.Fatal(err)
		}
		m.Header.Set("Nats-Msg-Id", fmt.Sprintf("dup-%d", i))
		e.agent.publish(m, nil)
	}
	e.waitStatus(t, a.ID, "running")
	// Let the second copy be processed, then count.
	time.Sleep(500 * time.Millisecond)
	n := 0
	for _, ev := range e.history(t, a.ID) {
		if ev.Type == "vm_provisioned" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("result recorded %d times", n)
	}
}

// TestConcurrentCreatesCannotOvershootQuota fires creates in parallel at a
// quota of 5 VMs: exactly 5 are accepted, the rest are 422 quota_exceeded.
func TestConcurrentCreatesCannotOvershootQuota(t *testing.T) {
	e := newEnv(t, stacktest.Options{}, domain.Quota{MaxVMs: 5, MaxCores: 100, MaxMemoryMB: 1 << 20, MaxDiskGB: 10000})
	var (
		wg               sync.WaitGroup
		mu               sync.Mutex
		accepted, denied int
	)
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.s.Do(t, e.token, http.MethodPost, "/v1/vms", map[string]any{"name": fmt.Sprintf("q-%d", i), "kind": "qemu",
				"cores": 1, "memory_mb": 512, "disk_gb": 10, "template": "debian-12"}, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.StatusCode == http.StatusAccepted:
				accepted++
			case r.StatusCode == http.StatusUnprocessableEntity && strings.Contains(string(r.Body), "quota_exceeded"):
				denied++
			default:
				t.Errorf("create: %d %s", r.StatusCode, r.Body)
			}
		}()
	}
	wg.Wait()
	if accepted != 5 || denied != 19 {
		t.Fatalf("accepted %d, denied %d; want 5 and 19", accepted, denied)
	}
	var tenant struct {
		Usage struct {
			VMs   int `json:"vms"`
			Cores int `json:"cores"`
		} `json:"usage"`
	}
	admin := e.s.Login(t, e.s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)).AccessToken
	if r := e.s.Do(t, admin, http.MethodGet, "/v1/tenants/"+e.tenID.String(), nil, &tenant); r.StatusCode != 200 {
		t.Fatalf("tenant: %d %s", r.StatusCode, r.Body)
	}
	if tenant.Usage.VMs != 5 || tenant.Usage.Cores != 5 {
		t.Fatalf("usage: %+v", tenant.Usage)
	}
}

// TestFailedCreateReleasesQuotaAndDriftIsRecorded covers a failed result and
// reconciliation: a VM stopped and one deleted behind AccountDB's back.
func TestFailedCreateReleasesQuotaAndDriftIsRecorded(t *testing.T) {
	e := newEnv(t, stacktest.Options{}, domain.Quota{MaxVMs: 2, MaxCores: 100, MaxMemoryMB: 1 << 20, MaxDiskGB: 10000})
	failed := e.create(t, "doomed")
	req := e.lastRequest(t, failed.ID)
	e.agent.result(protocol.Result{RequestEventID: req.EventID, CorrelationID: req.CorrelationID, TenantID: e.tenID,
		VMID: uuid.MustParse(failed.ID), Action: domain.ActionCreate, Error: "clone failed: storage 'local-lvm' is full"})
	v := e.waitStatus(t, failed.ID, "failed")
	if !strings.Contains(v.LastError, "storage 'local-lvm' is full") {
		t.Fatalf("PVE's message lost: %q", v.LastError)
	}
	// Its quota is free again: two more VMs fit in a quota of two.
	one, two := e.create(t, "one"), e.create(t, "two")
	for i, id := range []string{one.ID, two.ID} {
		e.succeed(t, id, domain.ActionCreate, func(r *protocol.Result) { r.ClusterID, r.Node, r.PVEVMID = e.agent.cluster, "pve1", 300000+i })
		e.waitStatus(t, id, "running")
	}
	// Reconciliation: "one" was stopped by hand, "two" deleted by hand. A
	// guest missing is taken for deleted when a second listing confirms it
	// (the commands tests check that one listing is not enough).
	stoppedOne := protocol.ObservedGuest{VMID: uuid.MustParse(one.ID), TenantID: e.tenID, Node: "pve1", PVEVMID: 300000, Status: "stopped"}
	e.agent.observe(stoppedOne)
	e.waitStatus(t, one.ID, "stopped")
	e.agent.observe(stoppedOne)
	v = e.waitStatus(t, two.ID, "deleted")
	if !strings.Contains(v.LastError, "outside AccountDB") {
		t.Fatalf("drift not explained: %q", v.LastError)
	}
	found := false
	for _, ev := range e.history(t, one.ID) {
		found = found || ev.Type == "vm_drift_detected"
	}
	if !found {
		t.Fatal("no vm_drift_detected event in the history")
	}
}

// TestLostTaskTimesOut: a request whose result never comes turns failed at
// the deadline instead of staying provisioning forever.
func TestLostTaskTimesOut(t *testing.T) {
	e := newEnv(t, stacktest.Options{VMDeadline: time.Second}, roomyQuota)
	a := e.create(t, "lost")
	v := e.waitStatus(t, a.ID, "failed")
	if !strings.Contains(v.LastError, "presumed lost") {
		t.Fatalf("last_error: %q", v.LastError)
	}
}

// TestVMsAreTenantScoped: another tenant's VM is a 404 on every route.
func TestVMsAreTenantScoped(t *testing.T) {
	e := newEnv(t, stacktest.Options{}, roomyQuota)
	a := e.create(t, "mine")
	other := e.s.Tenant(t, "other")
	stranger := e.s.Login(t, e.s.User(t, other, auth.RoleTenantAdmin)).AccessToken
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/v1/vms/" + a.ID, nil},
		{http.MethodGet, "/v1/vms/" + a.ID + "/history", nil},
		{http.MethodPatch, "/v1/vms/" + a.ID, map[string]int{"cores": 3}},
		{http.MethodPost, "/v1/vms/" + a.ID + "/actions/start", nil},
		{http.MethodPost, "/v1/vms/" + a.ID + "/snapshots", map[string]string{"name": "x1"}},
		{http.MethodGet, "/v1/vms/" + a.ID + "/snapshots", nil},
		{http.MethodPost, "/v1/vms/" + a.ID + "/snapshots/x1/rollback", nil},
		{http.MethodDelete, "/v1/vms/" + a.ID + "/snapshots/x1", nil},
		{http.MethodPost, "/v1/vms/" + a.ID + "/backups", map[string]string{"mode": "snapshot"}},
		{http.MethodGet, "/v1/vms/" + a.ID + "/backups", nil},
		{http.MethodDelete, "/v1/vms/" + a.ID, nil},
	} {
		r := e.s.Do(t, stranger, c.method, c.path, c.body, nil)
		if r.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s by another tenant: %d %s", c.method, c.path, r.StatusCode, r.Body)
		}
	}
	var l struct{ Items []vm }
	e.s.Do(t, stranger, http.MethodGet, "/v1/vms", nil, &l)
	if len(l.Items) != 0 {
		t.Fatalf("another tenant lists %d VMs", len(l.Items))
	}
}
