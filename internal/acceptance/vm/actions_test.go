package vm_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
)

// vmAction is one item of GET /v1/vm-actions.
type vmAction struct {
	Name        string   `json:"name"`
	Method      string   `json:"method"`
	Path        string   `json:"path"`
	Body        bool     `json:"body"`
	AllowedFrom []string `json:"allowed_from"`
	Transient   *string  `json:"transient"`
	Settles     *string  `json:"settles"`
}

// actionBodies are the parameters of the actions that take some.
var actionBodies = map[string]any{
	domain.ActionCreate:    map[string]any{"name": "web-9", "kind": "qemu", "cores": 1, "memory_mb": 512, "disk_gb": 5, "template": "debian-12"},
	domain.ActionResize:    map[string]int{"cores": 3},
	domain.ActionSnapshot:  map[string]string{"name": "before-upgrade"},
	domain.ActionConfigure: map[string]any{"cloud_init": map[string]any{"user": "ops"}},
	domain.ActionRebuild:   map[string]any{},
	domain.ActionBackup:    map[string]string{"mode": "snapshot"},
}

// onOwnResource reports whether a's route names a snapshot or a backup
// rather than only the VM: backups_test.go asks for those, on a snapshot
// or backup it made first.
func onOwnResource(a vmAction) bool {
	return strings.Contains(a.Path, "{name}") || !strings.HasPrefix(a.Path, "/v1/vms")
}

// TestEveryServedVMActionIsRouted asks for every action GET /v1/vm-actions
// serves, by the route it names, on a VM in one of the statuses it allows,
// and follows the VM through the statuses it says; a VM with an action
// pending refuses each with a 422, and /actions/{name} refuses any action
// that is not a power action with a 404.
func TestEveryServedVMActionIsRouted(t *testing.T) {
	e := newEnv(t, stacktest.Options{}, roomyQuota)
	var l struct{ Items []vmAction }
	if r := e.s.Do(t, e.token, http.MethodGet, "/v1/vm-actions", nil, &l); r.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/vm-actions: %d %s", r.StatusCode, r.Body)
	}
	if len(l.Items) != len(domain.VMActions) {
		t.Fatalf("%d actions served, the table has %d", len(l.Items), len(domain.VMActions))
	}
	do := func(a vmAction, id string) stacktest.Response {
		var body any
		if a.Body {
			body = actionBodies[a.Name]
		}
		return e.s.Do(t, e.token, a.Method, strings.ReplaceAll(a.Path, "{id}", id), body, nil)
	}
	pending := e.create(t, "pending")
	for _, a := range l.Items {
		if a.Name == domain.ActionCreate {
			if r := do(a, ""); r.StatusCode != http.StatusAccepted {
				t.Errorf("create: %d %s", r.StatusCode, r.Body)
			}
			continue
		}
		if onOwnResource(a) {
			continue
		}
		t.Run(a.Name, func(t *testing.T) {
			if r := do(a, pending.ID); r.StatusCode != http.StatusUnprocessableEntity || r.Problem(t)["code"] != "invalid_state" {
				t.Fatalf("while provisioning: %d %s", r.StatusCode, r.Body)
			}
			v := e.create(t, "vm-"+a.Name)
			e.succeed(t, v.ID, domain.ActionCreate, func(r *protocol.Result) { r.ClusterID, r.Node, r.PVEVMID = e.agent.cluster, "pve1", 4242 })
			from := "running"
			e.waitStatus(t, v.ID, from)
			if !slices.Contains(a.AllowedFrom, from) {
				from = "stopped"
				if e.s.Do(t, e.token, http.MethodPost, "/v1/vms/"+v.ID+"/actions/stop", nil, nil).StatusCode != http.StatusAccepted {
					t.Fatal("stop")
				}
				e.succeed(t, v.ID, domain.ActionStop, nil)
				e.waitStatus(t, v.ID, from)
			}
			if r := do(a, v.ID); r.StatusCode != http.StatusAccepted {
				t.Fatalf("from %s: %d %s", from, r.StatusCode, r.Body)
			}
			if want, _ := domain.LookupVMAction(a.Name); e.lastRequest(t, v.ID).Type != want.RequestEvent {
				t.Fatalf("request recorded as %s, want %s", e.lastRequest(t, v.ID).Type, want.RequestEvent)
			}
			if a.Transient != nil {
				e.waitStatus(t, v.ID, *a.Transient)
			}
			e.succeed(t, v.ID, a.Name, func(r *protocol.Result) { r.Snapshot, r.Cores, r.MemoryMB, r.DiskGB = "before-upgrade", 3, 2048, 20 })
			want := from
			if a.Settles != nil {
				want = *a.Settles
			}
			stacktest.Eventually(t, 15*time.Second, a.Name+" settled", func() bool {
				got := e.get(t, v.ID, 0)
				return got.Status == want && got.Pending == ""
			})
		})
	}
	for _, a := range l.Items {
		if la, _ := domain.LookupVMAction(a.Name); la.Power || a.Path == "/v1/vms/{id}/actions/"+a.Name || onOwnResource(a) {
			continue // routed there on purpose (rebuild)
		}
		r := e.s.Do(t, e.token, http.MethodPost, "/v1/vms/"+pending.ID+"/actions/"+a.Name, nil, nil)
		if r.StatusCode != http.StatusNotFound {
			t.Errorf("POST .../actions/%s: %d %s", a.Name, r.StatusCode, r.Body)
		}
	}
}
