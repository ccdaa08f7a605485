package vm_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
)

// rawVM GETs a VM (optionally with a query) and decodes it field by field.
func (e *env) rawVM(t *testing.T, id, query string) (int, map[string]any) {
	t.Helper()
	r := e.s.Do(t, e.token, http.MethodGet, "/v1/vms/"+id+query, nil, nil)
	var m map[string]any
	if r.StatusCode == http.StatusOK {
		if err := json.Unmarshal(r.Body, &m); err != nil {
			t.Fatal(err)
		}
	}
	return r.StatusCode, m
}

func asOf(at time.Time) string { return "?as_of=" + url.QueryEscape(at.Format(time.RFC3339Nano)) }

// sameVM compares two answers field by field.
func sameVM(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: fields %v, want %v", what, got, want)
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s: %s = %v, want %v", what, k, got[k], w)
		}
	}
}

// TestVMAsOf: ?as_of= rebuilds the VM from its events. At an instant
// between two steps of its life it answers what the read model answered
// then; at the present, what it answers now.
func TestVMAsOf(t *testing.T) {
	e := newEnv(t, stacktest.Options{}, roomyQuota)
	beforeAll := time.Now()
	a := e.create(t, "travel-1")
	e.get(t, a.ID, a.Position) // the read model has the create
	// A platform administrator sees the tenant, whose usage counts the VM.
	admin := e.s.Login(t, e.s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)).AccessToken
	tenant := func(query string) map[string]any {
		t.Helper()
		var m map[string]any
		if r := e.s.Do(t, admin, http.MethodGet, "/v1/tenants/"+e.tenID.String()+query, nil, &m); r.StatusCode != http.StatusOK {
			t.Fatalf("tenant: %d %s", r.StatusCode, r.Body)
		}
		return m
	}
	type step struct {
		at           time.Time
		seen, tenant map[string]any
	}
	var steps []step
	capture := func() {
		t.Helper()
		_, m := e.rawVM(t, a.ID, "")
		steps = append(steps, step{time.Now(), m, tenant("")})
	}
	capture() // provisioning

	e.succeed(t, a.ID, domain.ActionCreate, func(r *protocol.Result) {
		r.ClusterID, r.Node, r.PVEVMID = e.agent.cluster, "pve2", 4242
	})
	e.waitStatus(t, a.ID, "running")
	capture()

	if r := e.s.Do(t, e.token, http.MethodPatch, "/v1/vms/"+a.ID, map[string]int{"cores": 4}, nil); r.StatusCode != http.StatusAccepted {
		t.Fatalf("resize: %d %s", r.StatusCode, r.Body)
	}
	stacktest.Eventually(t, 10*time.Second, "resize pending", func() bool {
		_, m := e.rawVM(t, a.ID, "")
		return m["pending_action"] == domain.ActionResize
	})
	capture()
	e.succeed(t, a.ID, domain.ActionResize, func(r *protocol.Result) { r.Cores, r.MemoryMB, r.DiskGB = 4, 2048, 20 })
	stacktest.Eventually(t, 10*time.Second, "resized", func() bool { return e.get(t, a.ID, 0).Cores == 4 })
	capture()

	if r := e.s.Do(t, e.token, http.MethodPost, "/v1/vms/"+a.ID+"/actions/stop", nil, nil); r.StatusCode != http.StatusAccepted {
		t.Fatalf("stop: %d %s", r.StatusCode, r.Body)
	}
	e.waitStatus(t, a.ID, "stopping")
	capture()
	e.succeed(t, a.ID, domain.ActionStop, nil)
	e.waitStatus(t, a.ID, "stopped")

	for i, s := range steps {
		code, m := e.rawVM(t, a.ID, asOf(s.at))
		if code != http.StatusOK {
			t.Fatalf("step %d: as_of %d", i, code)
		}
		sameVM(t, "as_of step "+s.seen["status"].(string), m, s.seen)
		sameVM(t, "tenant as_of step "+s.seen["status"].(string), tenant(asOf(s.at)), s.tenant)
	}
	if u := steps[3].tenant["usage"].(map[string]any); u["vms"] != float64(1) || u["cores"] != float64(4) {
		t.Fatalf("usage after the resize: %v", u)
	}
	if steps[0].seen["status"] != "provisioning" || steps[1].seen["node"] != "pve2" || steps[3].seen["cores"] != float64(4) {
		t.Fatalf("the steps are not the lifecycle: %v", steps)
	}

	_, now := e.rawVM(t, a.ID, "")
	_, travelled := e.rawVM(t, a.ID, asOf(time.Now()))
	sameVM(t, "as_of now", travelled, now)
	if now["status"] != "stopped" {
		t.Fatalf("now: %v", now)
	}

	if code, _ := e.rawVM(t, a.ID, asOf(beforeAll)); code != http.StatusNotFound {
		t.Fatalf("before the first event: %d", code)
	}
	// The earliest instant RFC 3339 can write is an instant like any other,
	// not "no bound".
	if code, _ := e.rawVM(t, a.ID, "?as_of=0001-01-01T00:00:00Z"); code != http.StatusNotFound {
		t.Fatalf("as_of the year 1: %d", code)
	}
	if code, _ := e.rawVM(t, a.ID, "?as_of=soon"); code != http.StatusBadRequest {
		t.Fatalf("invalid as_of: %d", code)
	}
	// Another tenant's VM does not exist, now or then.
	other := e.s.Login(t, e.s.User(t, e.s.Tenant(t, "other"), auth.RoleVMAdmin)).AccessToken
	if r := e.s.Do(t, other, http.MethodGet, "/v1/vms/"+a.ID+asOf(time.Now()), nil, nil); r.StatusCode != http.StatusNotFound {
		t.Fatalf("another tenant's VM as_of: %d", r.StatusCode)
	}
}
