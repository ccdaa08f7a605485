package agent

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/accountdb/accountdb/internal/natstest"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/accountdb/accountdb/vault"
)

// env is one test's world: an embedded JetStream, a pvesim cluster
// registered the way the core registers one, and collectors of everything
// the agent publishes.
type env struct {
	t   *testing.T
	ctx context.Context
	// js is the agent's connection (agent credentials); core publishes
	// events as the relay does and inspects the streams (core credentials).
	js      jetstream.JetStream
	core    jetstream.JetStream
	nats    *natstest.Server
	natsURL string
	srv     *pvesim.Server
	sim     *pvesim.Simulator
	vault   *vault.Vault
	cluster uuid.UUID
	tenant  uuid.UUID
	pos     atomic.Int64

	mu           sync.Mutex
	results      []protocol.Result
	observations []protocol.Observation
	inventories  []protocol.Inventory
	guestReports []protocol.GuestAddresses
	changed      chan struct{}
}

func newEnv(t *testing.T, opts pvesim.Options) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ns := natstest.Start(t)
	_, core := ns.JetStream(t, natsauth.Core())
	if _, err := bus.EnsureStream(ctx, core); err != nil {
		t.Fatal(err)
	}
	agentStream, err := protocol.EnsureStream(ctx, core)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := pvesim.StartServer(opts, "127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	t.Cleanup(func() { checkPVERequests(t, srv.Simulator()) })
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	v, err := vault.New(key)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, core: core, nats: ns, natsURL: ns.URL(), srv: srv, sim: srv.Simulator(), vault: v, cluster: uuid.New(), tenant: uuid.New(), changed: make(chan struct{})}
	_, e.js = e.connect()
	e.collect(agentStream)
	e.registerCluster(e.cluster, srv, pvesim.DefaultTokenSecret)
	return e
}

// registerCluster publishes a cluster_registered event as the relay would,
// its secret sealed for the cluster's id.
func (e *env) registerCluster(id uuid.UUID, srv *pvesim.Server, secret string) {
	e.t.Helper()
	apiURL := srv.URL()
	sealed, err := e.vault.Seal(secret, domain.ClusterSecretBinding(id, apiURL))
	if err != nil {
		e.t.Fatal(err)
	}
	e.publish(domain.PlatformTenant, eventlog.StreamID{Type: domain.StreamCluster, ID: id}, &domain.ClusterRegistered{
		Name: "sim-" + id.String()[:8], APIURL: apiURL, TokenID: pvesim.DefaultTokenID, SealedSecret: sealed, TLSFingerprint: domain.CertificateFingerprint(srv.Certificate()),
	})
}

// publish puts a domain event on ACCOUNTDB_EVENTS exactly as the relay does.
func (e *env) publish(tenant uuid.UUID, stream eventlog.StreamID, de domain.Event) eventlog.Event {
	e.t.Helper()
	data, err := json.Marshal(de)
	if err != nil {
		e.t.Fatal(err)
	}
	pos := e.pos.Add(1)
	ev := eventlog.Event{
		Position: eventlog.Position{TransactionID: uint64(pos), GlobalPosition: pos},
		EventID:  uuid.Must(uuid.NewV7()), Stream: stream, StreamVersion: pos, Type: de.EventType(), SchemaVersion: 1,
		TenantID: tenant, ActorID: uuid.New(), CorrelationID: uuid.New(), CausationID: uuid.New(),
		Data: data, RecordedAt: time.Now().UTC(),
	}
	e.publishEnvelope(ev, ev.EventID.String())
	return ev
}

func (e *env) publishEnvelope(ev eventlog.Event, msgID string) {
	e.t.Helper()
	body, err := json.Marshal(ev)
	if err != nil {
		e.t.Fatal(err)
	}
	msg := &nats.Msg{Subject: bus.Subject(ev), Header: nats.Header{}, Data: body}
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	if _, err := e.core.PublishMsg(e.ctx, msg); err != nil {
		e.t.Fatal(err)
	}
}

// request publishes a VM request in the test tenant.
func (e *env) request(vm uuid.UUID, de domain.Event) eventlog.Event {
	e.t.Helper()
	return e.publish(e.tenant, eventlog.StreamID{Type: domain.StreamVM, ID: vm}, de)
}

func (e *env) createReq(kind domain.VMKind, name, template string, spec domain.VMSpec) *domain.VMCreateRequested {
	return &domain.VMCreateRequested{Name: name, Kind: kind, Spec: spec, Template: template, ClusterID: e.cluster}
}

// collect reads everything the agent publishes on ACCOUNTDB_AGENT.
func (e *env) collect(s jetstream.Stream) {
	e.t.Helper()
	cons, err := s.OrderedConsumer(e.ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		e.t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		e.mu.Lock()
		defer e.mu.Unlock()
		switch protocol.MessageKind(m.Headers()) {
		case protocol.KindResult:
			r, err := protocol.DecodeResult(m.Data())
			if err != nil || m.Subject() != protocol.ResultSubject(r.TenantID) {
				e.t.Errorf("bad result on %s: %v", m.Subject(), err)
				return
			}
			e.results = append(e.results, r)
		case protocol.KindObservation:
			o, err := protocol.DecodeObservation(m.Data())
			if err != nil {
				e.t.Errorf("bad observation: %v", err)
				return
			}
			e.observations = append(e.observations, o)
		case protocol.KindGuestAddresses:
			g, err := protocol.DecodeGuestAddresses(m.Data())
			if err != nil || m.Subject() != protocol.GuestSubject(g.TenantID) {
				e.t.Errorf("bad guest report on %s: %v", m.Subject(), err)
				return
			}
			e.guestReports = append(e.guestReports, g)
		case protocol.KindInventory:
			inv, err := protocol.DecodeInventory(m.Data())
			if err != nil {
				e.t.Errorf("bad inventory: %v", err)
				return
			}
			e.inventories = append(e.inventories, inv)
		default:
			if strings.HasPrefix(m.Subject(), forgedSubjectPrefix) {
				return // origin_test's message, not the agent's
			}
			e.t.Errorf("message without kind on %s", m.Subject())
		}
		close(e.changed)
		e.changed = make(chan struct{})
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(cc.Stop)
}

// waitFor blocks until cond (called with e.mu held) holds.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		ok := cond()
		ch := e.changed
		e.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond): // conditions on pvesim or metrics change without a message
		case <-deadline.C:
			e.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// result waits for the result of a request event.
func (e *env) result(ev eventlog.Event) protocol.Result {
	e.t.Helper()
	var r protocol.Result
	e.waitFor("the result of "+ev.Type, func() bool {
		for _, x := range e.results {
			if x.RequestEventID == ev.EventID {
				r = x
				return true
			}
		}
		return false
	})
	if r.CorrelationID != ev.CorrelationID || r.TenantID != ev.TenantID || r.VMID != ev.Stream.ID {
		e.t.Fatalf("result %+v does not answer event %s (correlation %s)", r, ev.EventID, ev.CorrelationID)
	}
	return r
}

// ok waits for a request's result and fails the test unless it succeeded.
func (e *env) ok(ev eventlog.Event) protocol.Result {
	e.t.Helper()
	r := e.result(ev)
	if !r.Succeeded {
		e.t.Fatalf("%s failed: %s", ev.Type, r.Error)
	}
	return r
}

func (e *env) resultsFor(ev eventlog.Event) []protocol.Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []protocol.Result
	for _, r := range e.results {
		if r.RequestEventID == ev.EventID {
			out = append(out, r)
		}
	}
	return out
}

// tagged lists the guests on pvesim carrying a VM's tag.
func (e *env) tagged(vm uuid.UUID) []pvesim.GuestInfo {
	var out []pvesim.GuestInfo
	for _, g := range e.sim.Guests() {
		for _, tag := range protocol.SplitTags(g.Config["tags"]) {
			if tag == protocol.VMTag(vm) {
				out = append(out, g)
			}
		}
	}
	return out
}

// guest is the one guest of a VM.
func (e *env) guest(vm uuid.UUID) pvesim.GuestInfo {
	e.t.Helper()
	gs := e.tagged(vm)
	if len(gs) != 1 {
		e.t.Fatalf("VM %s has %d guests on pvesim, want 1", vm, len(gs))
	}
	return gs[0]
}

// startAgent runs an agent with fast settings (tweak changes them) until
// the test ends or the returned stop is called.
func (e *env) startAgent(tweak func(*Config)) (stop func(), reg *prometheus.Registry) {
	e.t.Helper()
	return e.startAgentOn(e.js, tweak)
}

// connect opens another NATS connection, for an agent whose connection a
// test cuts.
func (e *env) connect() (*nats.Conn, jetstream.JetStream) {
	e.t.Helper()
	return e.connectTo(e.natsURL)
}

// connectTo opens a NATS connection to url as the agent, closed when the
// test ends.
func (e *env) connectTo(url string) (*nats.Conn, jetstream.JetStream) {
	t := e.t
	t.Helper()
	nc, err := nats.Connect(url, e.nats.Options(t, natsauth.Agent())...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func (e *env) startAgentOn(js jetstream.JetStream, tweak func(*Config)) (stop func(), reg *prometheus.Registry) {
	e.t.Helper()
	ta := e.runAgent(js, tweak, nil)
	return ta.stop, ta.reg
}

// testAgent is a running agent with its metrics and a log of its Proxmox
// API calls.
type testAgent struct {
	*Agent
	stop func() // cancels Run's context and waits for Run to return
	reg  *prometheus.Registry
	pve  *pveCalls
}

// runAgent runs an agent on js with fast settings (tweak changes them)
// until the test ends or stop is called. onLeader, when set, is told of
// every change of the agent's leadership, under the agent's lock.
func (e *env) runAgent(js jetstream.JetStream, tweak func(*Config), onLeader func(bool)) *testAgent {
	e.t.Helper()
	reg := prometheus.NewRegistry()
	calls := &pveCalls{}
	cfg := Config{
		JS: js, Vault: e.vault, Registerer: reg,
		HTTPClient:          calls.client,
		LeaseTTL:            3 * time.Second,
		Logger:              slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Concurrency:         4,
		ReconcileInterval:   time.Hour,
		AckWait:             2 * time.Second,
		RetryAttempts:       8,
		RetryBaseDelay:      10 * time.Millisecond,
		RetryMaxDelay:       100 * time.Millisecond,
		TaskPollInterval:    20 * time.Millisecond,
		ShutdownTimeout:     10 * time.Second,
		ClusterWait:         2 * time.Second,
		GuestAddressPoll:    20 * time.Millisecond,
		GuestAddressPollMax: 200 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	a.onLeader = onLeader
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("agent Run: %v", err)
			}
		})
	}
	e.t.Cleanup(stop)
	return &testAgent{Agent: a, stop: stop, reg: reg, pve: calls}
}

// pveCalls records when each Proxmox API call of one agent started and
// ended.
type pveCalls struct {
	mu    sync.Mutex
	spans []span
}

type span struct{ start, end time.Time }

func (p *pveCalls) client(fingerprint string) *http.Client {
	hc := defaultHTTPClient(fingerprint)
	hc.Transport = recordingTransport{base: hc.Transport, calls: p}
	return hc
}

func (p *pveCalls) all() []span {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.spans)
}

type recordingTransport struct {
	base  http.RoundTripper
	calls *pveCalls
}

func (t recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	t.calls.mu.Lock()
	t.calls.spans = append(t.calls.spans, span{start, time.Now()})
	t.calls.mu.Unlock()
	return resp, err
}

// waitInventory waits for the inventory an agent publishes when it learns
// the cluster, so that faults injected afterwards hit requests only.
func (e *env) waitInventory() {
	e.t.Helper()
	e.waitFor("the first inventory", func() bool { return len(e.inventories) > 0 })
}

// inventory is the latest inventory the agent published.
func (e *env) inventory() protocol.Inventory {
	e.t.Helper()
	e.waitInventory()
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.inventories[len(e.inventories)-1]
}

// testWriter sends agent logs to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = testWriter{}
