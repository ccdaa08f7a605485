package vm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fakeAgent plays the agent's part of the protocol by hand, so the core's
// handling of results, observations and inventory is tested on its own.
type fakeAgent struct {
	t       *testing.T
	js      jetstream.JetStream
	cluster uuid.UUID
}

func newFakeAgent(t *testing.T, s *stacktest.Stack) *fakeAgent {
	js := s.AgentJetStream(t) // it publishes what the agent publishes, with the agent's credentials
	if _, err := protocol.EnsureStream(context.Background(), js); err != nil {
		t.Fatal(err)
	}
	a := &fakeAgent{t: t, js: js, cluster: uuid.New()}
	a.inventory()
	return a
}

func (a *fakeAgent) publish(m *nats.Msg, err error) {
	a.t.Helper()
	if err != nil {
		a.t.Fatal(err)
	}
	if _, err := a.js.PublishMsg(context.Background(), m); err != nil {
		a.t.Fatal(err)
	}
}

// inventory announces one cluster with templates and two nodes.
func (a *fakeAgent) inventory() {
	a.publish(protocol.NewInventoryMsg(protocol.Inventory{ClusterID: a.cluster, ObservedAt: time.Now(),
		Nodes: []protocol.Node{{Name: "pve1", Online: true, Cores: 16, MemoryMB: 65536, FreeMemoryMB: 60000, DiskGB: 1000, FreeDiskGB: 900},
			{Name: "pve2", Online: true, Cores: 16, MemoryMB: 65536, FreeMemoryMB: 30000, DiskGB: 1000, FreeDiskGB: 900}},
		Templates: []protocol.Template{{Name: "debian-12", Kind: "qemu", OS: "l26", Node: "pve1", PVEVMID: 9000},
			{Name: "debian-12-ct", Kind: "lxc", OS: "debian", Node: "pve1", PVEVMID: 9100}}}))
}

func (a *fakeAgent) result(r protocol.Result) {
	a.t.Helper()
	r.FinishedAt = time.Now()
	a.publish(protocol.NewResultMsg(r))
}

func (a *fakeAgent) observe(guests ...protocol.ObservedGuest) {
	a.t.Helper()
	a.publish(protocol.NewObservationMsg(protocol.Observation{ClusterID: a.cluster, Guests: guests, ObservedAt: time.Now()}))
}

type vm struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Kind      string   `json:"kind"`
	Cores     int      `json:"cores"`
	MemoryMB  int      `json:"memory_mb"`
	DiskGB    int      `json:"disk_gb"`
	Status    string   `json:"status"`
	Pending   string   `json:"pending_action"`
	Node      string   `json:"node"`
	VMID      int      `json:"vmid"`
	LastError string   `json:"last_error"`
	Snapshots []string `json:"snapshots"`
	Version   int64    `json:"version"`
}

type accepted struct {
	ID            string `json:"id"`
	StreamVersion int64  `json:"stream_version"`
	Position      int64  `json:"position"`
}

type historyEvent struct {
	Position      int64           `json:"position"`
	EventID       uuid.UUID       `json:"event_id"`
	StreamVersion int64           `json:"stream_version"`
	Type          string          `json:"type"`
	ActorID       *string         `json:"actor_id"`
	CorrelationID uuid.UUID       `json:"correlation_id"`
	CausationID   *string         `json:"causation_id"`
	Data          json.RawMessage `json:"data"`
}

// env is one stack with a tenant, a vm_admin and the fake agent.
type env struct {
	s     *stacktest.Stack
	agent *fakeAgent
	token string
	tenID uuid.UUID
}

func newEnv(t *testing.T, o stacktest.Options, quota domain.Quota) *env {
	s := stacktest.Start(t, o)
	e := &env{s: s, agent: newFakeAgent(t, s)}
	e.tenID = s.TenantWithQuota(t, "acme", quota)
	e.token = s.Login(t, s.User(t, e.tenID, auth.RoleVMAdmin)).AccessToken
	// The template must be known before a create can name it.
	stacktest.Eventually(t, 10*time.Second, "templates", func() bool {
		var l struct{ Items []any }
		r := s.Do(t, e.token, http.MethodGet, "/v1/templates", nil, &l)
		return r.StatusCode == 200 && len(l.Items) == 2
	})
	return e
}

var roomyQuota = domain.Quota{MaxVMs: 50, MaxCores: 200, MaxMemoryMB: 1 << 20, MaxDiskGB: 100000}

func (e *env) create(t *testing.T, name string) accepted {
	t.Helper()
	var a accepted
	r := e.s.Do(t, e.token, http.MethodPost, "/v1/vms", map[string]any{"name": name, "kind": "qemu", "cores": 2,
		"memory_mb": 2048, "disk_gb": 20, "template": "debian-12"}, &a)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("create %s: %d %s", name, r.StatusCode, r.Body)
	}
	return a
}

func (e *env) get(t *testing.T, id string, token int64) vm {
	t.Helper()
	var v vm
	r := e.s.Do(t, e.token, http.MethodGet, "/v1/vms/"+id, nil, &v, "X-Consistency-Token", fmt.Sprint(token))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("get %s: %d %s", id, r.StatusCode, r.Body)
	}
	return v
}

// waitStatus polls until the VM shows status; the read model may not have
// the VM yet at first (404), which counts as "not yet".
func (e *env) waitStatus(t *testing.T, id, status string) vm {
	t.Helper()
	var v vm
	stacktest.Eventually(t, 15*time.Second, "VM "+id+" "+status, func() bool {
		v = vm{}
		r := e.s.Do(t, e.token, http.MethodGet, "/v1/vms/"+id, nil, &v)
		return r.StatusCode == http.StatusOK && v.Status == status
	})
	return v
}

func (e *env) history(t *testing.T, id string) []historyEvent {
	t.Helper()
	var l struct{ Items []historyEvent }
	r := e.s.Do(t, e.token, http.MethodGet, "/v1/vms/"+id+"/history?limit=200", nil, &l)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("history: %d %s", r.StatusCode, r.Body)
	}
	return l.Items
}

// lastRequest is the newest *requested* event of a VM: what a result answers.
func (e *env) lastRequest(t *testing.T, id string) historyEvent {
	t.Helper()
	h := e.history(t, id)
	for i := len(h) - 1; i >= 0; i-- {
		if slices.Contains(domain.RequestEventTypes, h[i].Type) {
			return h[i]
		}
	}
	t.Fatalf("no request in the history of %s", id)
	return historyEvent{}
}

func (e *env) succeed(t *testing.T, id string, action string, extra func(*protocol.Result)) {
	t.Helper()
	req := e.lastRequest(t, id)
	r := protocol.Result{RequestEventID: req.EventID, CorrelationID: req.CorrelationID, TenantID: e.tenID,
		VMID: uuid.MustParse(id), Action: action, Succeeded: true, TaskID: "UPID:pve1:00001234:00000001:6560A000:" + action + ":100:root@pam:"}
	if extra != nil {
		extra(&r)
	}
	e.agent.result(r)
}
