package agent

import (
	"encoding/json"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/pvesim"
)

// Two agents on one deployment: exactly one leads, and only it touches
// Proxmox, consumes requests and reconciles; each request runs once.
func TestHAOnlyTheLeaderActs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{TimeScale: 20 * time.Millisecond})
	hist := &leadership{}
	// A lease long enough that a loaded machine does not fence the leader
	// mid-test (a 2 s TTL, a 1 s fence, was missed at load 20): what is
	// checked is who acts while leadership holds, not how fast it moves.
	fast := func(c *Config) { c.LeaseTTL = 10 * time.Second; c.ReconcileInterval = 100 * time.Millisecond }
	a := e.runAgent(e.js, fast, hist.hook("a"))
	b := e.runAgent(e.js, fast, hist.hook("b"))
	leader := waitOneLeader(t, a, b)
	standby := a
	if leader == a {
		standby = b
	}
	waitUntil(t, "the standby to be ready", standby.Healthy)

	var reqs []eventlog.Event
	for i := range 6 {
		vm := uuid.New()
		reqs = append(reqs,
			e.request(vm, e.createReq(domain.KindQEMU, "ha-"+strconv.Itoa(i), "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8})),
			e.request(vm, &domain.VMActionRequested{Action: domain.ActionStop}))
	}
	for _, r := range reqs {
		e.ok(r)
	}
	e.waitFor("every request acknowledged", func() bool { return e.pending(t) == 0 })
	e.waitFor("an observation", func() bool { return len(e.observations) > 0 })
	for _, r := range reqs {
		if n := len(e.resultsFor(r)); n != 1 {
			t.Fatalf("%s: %d results", r.Type, n)
		}
	}
	if !leader.Leader() || standby.Leader() {
		t.Fatal("leadership changed during the test")
	}
	if n := metric(t, leader.reg, "accountdb_agent_task_seconds", nil); n != float64(len(reqs)) {
		t.Fatalf("the leader ran %v requests, want %d", n, len(reqs))
	}
	for _, name := range []string{"accountdb_agent_task_seconds", "accountdb_agent_reconciliations_total"} {
		if n := metric(t, standby.reg, name, nil); n != 0 {
			t.Fatalf("the standby's %s is %v", name, n)
		}
	}
	if n := len(standby.pve.all()); n != 0 {
		t.Fatalf("the standby made %d Proxmox API calls", n)
	}
	if g := metric(t, leader.reg, "accountdb_agent_leader", nil); g != 1 {
		t.Fatalf("leader gauge of the leader: %v", g)
	}
	if g := metric(t, standby.reg, "accountdb_agent_leader", nil); g != 0 {
		t.Fatalf("leader gauge of the standby: %v", g)
	}
	hist.check(t)
}

// A leader stopped cleanly releases the lease: the standby takes over at
// once, long before the lease would have expired, and carries on.
func TestHATakeoverAfterCleanStop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	hist := &leadership{}
	const ttl = 30 * time.Second // only a release explains a fast takeover
	long := func(c *Config) { c.LeaseTTL = ttl }
	a := e.runAgent(e.js, long, hist.hook("a"))
	waitUntil(t, "a to lead", a.Leader)
	b := e.runAgent(e.js, long, hist.hook("b"))
	waitUntil(t, "b to be ready", b.Healthy)
	vm := uuid.New()
	e.ok(e.request(vm, e.createReq(domain.KindLXC, "clean", "debian-12-ct", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 4})))

	stopped := time.Now()
	a.stop()
	waitUntil(t, "b to take over", b.Leader)
	took := hist.gained(t, "b").Sub(stopped)
	t.Logf("takeover after a clean stop: %s (lease TTL %s)", took, ttl)
	if took > 10*time.Second {
		t.Fatalf("takeover took %s: the lease was not released", took)
	}
	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionStop}))
	if g := e.guest(vm); g.Status != pvesim.StatusStopped {
		t.Fatalf("guest %s", g.Status)
	}
	if len(b.pve.all()) == 0 {
		t.Fatal("the new leader made no Proxmox call")
	}
	hist.check(t)
}

// A leader that dies without releasing (its connection gone, then its
// process): the standby takes over once the lease expired, not before, and
// within about a TTL.
func TestHATakeoverAfterLeaderDies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	hist := &leadership{}
	const ttl = 2 * time.Second
	short := func(c *Config) { c.LeaseTTL = ttl }
	ncA, jsA := e.connect()
	a := e.runAgent(jsA, short, hist.hook("a"))
	waitUntil(t, "a to lead", a.Leader)
	b := e.runAgent(e.js, short, hist.hook("b"))
	waitUntil(t, "b to be ready", b.Healthy)
	writes := e.watchLease()
	e.ok(e.request(uuid.New(), e.createReq(domain.KindLXC, "before", "debian-12-ct", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 4})))

	killed := time.Now()
	ncA.Close()
	a.stop()
	// Requests sent while nobody leads wait for the new leader.
	vm := uuid.New()
	create := e.request(vm, e.createReq(domain.KindQEMU, "after", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8}))
	waitUntil(t, "b to take over", b.Leader)
	gained := hist.gained(t, "b")
	expiry := writes.last(t, a.Instance(), b.Instance()).Add(ttl)
	t.Logf("takeover after the leader died: %s after the kill, %s after its lease expired (TTL %s)", gained.Sub(killed), gained.Sub(expiry), ttl)
	if gained.Before(expiry) {
		t.Fatalf("b led at %s, before a's lease expired at %s", gained, expiry)
	}
	if d := gained.Sub(killed); d > ttl+10*time.Second {
		t.Fatalf("takeover took %s", d)
	}
	r := e.ok(create)
	if g := e.guest(vm); g.VMID != r.PVEVMID {
		t.Fatalf("guest %+v, result %+v", g, r)
	}
	hist.check(t)
}

// A leader cut off from NATS (a black hole: no error, no answer) while a
// slow clone runs stops acting before its lease can expire: it never starts
// the request waiting for a slot, abandons the clone, and makes its last
// Proxmox call before the standby takes over; the new leader finishes the
// clone and runs the waiting request, once each.
func TestHAFencingWhenCutOffFromNATS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{TimeScale: 2 * time.Second}) // a clone takes 4 s
	hist := &leadership{}
	const ttl = 2 * time.Second
	cfg := func(c *Config) {
		c.LeaseTTL, c.Concurrency, c.RetryAttempts, c.ShutdownTimeout = ttl, 1, 1000, time.Minute
	}
	px := startBlackHoleProxy(t, e.natsURL)
	ncA, jsA := e.connectTo(px.url())
	a := e.runAgent(jsA, cfg, hist.hook("a"))
	waitUntil(t, "a to lead", a.Leader)
	b := e.runAgent(e.js, cfg, hist.hook("b"))

	waitUntil(t, "b to be ready", b.Healthy)
	writes := e.watchLease()

	vm, waiting := uuid.New(), uuid.New()
	create := e.request(vm, e.createReq(domain.KindQEMU, "fenced", "debian-12", domain.VMSpec{Cores: 2, MemoryMB: 1024, DiskGB: 12}))
	e.waitFor("a's clone to start", func() bool {
		for _, g := range e.sim.Guests() {
			if g.Name == "fenced" && g.Lock == "clone" {
				return true
			}
		}
		return false
	})
	// Concurrency 1: this one waits for the clone's slot.
	second := e.request(waiting, e.createReq(domain.KindLXC, "waiting", "debian-12-ct", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 4}))
	e.waitFor("a to hold the waiting request", func() bool { return e.pending(t) == 2 })
	px.freeze()

	waitUntil(t, "b to take over", b.Leader)
	gained := hist.gained(t, "b")
	expiry := writes.last(t, a.Instance(), b.Instance()).Add(ttl)
	fenced := hist.lost(t, "a")
	t.Logf("a fenced %s before its lease expired; b led %s after it expired", expiry.Sub(fenced), gained.Sub(expiry))
	if !fenced.Before(expiry) {
		t.Fatalf("a stopped leading at %s, not before its lease expired at %s", fenced, expiry)
	}
	if gained.Before(expiry) {
		t.Fatalf("b led at %s, before a's lease expired at %s", gained, expiry)
	}
	var aLast time.Time
	for _, s := range a.pve.all() {
		if s.end.After(aLast) {
			aLast = s.end
		}
	}
	if !aLast.Before(expiry) {
		t.Fatalf("a's last Proxmox call ended at %s, after its lease expired at %s", aLast, expiry)
	}

	r := e.ok(create)
	g := e.guest(vm)
	if g.VMID != r.PVEVMID || g.Status != pvesim.StatusRunning || g.Config["cores"] != "2" {
		t.Fatalf("guest %+v, result %+v", g, r)
	}
	e.ok(second)
	e.guest(waiting)
	for _, s := range b.pve.all() {
		if s.start.Before(aLast) {
			t.Fatalf("b called Proxmox at %s, before a's last call ended at %s", s.start, aLast)
		}
	}
	named := 0
	for _, g := range e.sim.Guests() {
		if g.Name == "fenced" {
			named++
		}
	}
	if named != 1 {
		t.Fatalf("%d guests named fenced", named)
	}
	for _, ev := range []eventlog.Event{create, second} {
		if n := len(e.resultsFor(ev)); n != 1 {
			t.Fatalf("%d results of a create", n)
		}
	}
	if n := metric(t, a.reg, "accountdb_agent_task_seconds", map[string]string{"outcome": "abandoned"}); n != 1 {
		t.Fatalf("a abandoned %v requests, want the create", n)
	}
	waitUntil(t, "a to count its lost term", func() bool {
		return metric(t, a.reg, "accountdb_agent_leadership_lost_total", map[string]string{"reason": leaseFenced}) == 1
	})
	hist.check(t)
	// Its process ends, connection first (otherwise its registry's
	// ordered consumer, resetting itself, holds Run up for 10 s more).
	ncA.Close()
}

// leadership is the history of every leadership change of a test's agents.
type leadership struct {
	mu     sync.Mutex
	events []leaderEvent
}

type leaderEvent struct {
	agent  string
	leader bool
	at     time.Time
}

func (l *leadership) hook(agent string) func(bool) {
	return func(v bool) {
		l.mu.Lock()
		l.events = append(l.events, leaderEvent{agent, v, time.Now()})
		l.mu.Unlock()
	}
}

// check fails the test if two agents ever led at once.
func (l *leadership) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	leading := map[string]bool{}
	for _, ev := range l.events {
		leading[ev.agent] = ev.leader
		n := 0
		for _, v := range leading {
			if v {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("two leaders at %s: %+v", ev.at, l.events)
		}
	}
}

// gained is when agent last became leader.
func (l *leadership) gained(t *testing.T, agent string) time.Time { return l.last(t, agent, true) }

// lost is when agent last stopped leading.
func (l *leadership) lost(t *testing.T, agent string) time.Time { return l.last(t, agent, false) }

func (l *leadership) last(t *testing.T, agent string, leader bool) time.Time {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.events) - 1; i >= 0; i-- {
		if ev := l.events[i]; ev.agent == agent && ev.leader == leader {
			return ev.at
		}
	}
	t.Fatalf("%s never changed to leader=%v", agent, leader)
	return time.Time{}
}

// leaseWrites records every write of the lease key, with the server's
// timestamp.
type leaseWrites struct {
	mu      sync.Mutex
	entries []jetstream.KeyValueEntry
}

func (e *env) watchLease() *leaseWrites {
	e.t.Helper()
	kv, err := e.js.KeyValue(e.ctx, LeaseBucket)
	if err != nil {
		e.t.Fatal(err)
	}
	w, err := kv.Watch(e.ctx, leaseKey)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = w.Stop() })
	lw := &leaseWrites{}
	go func() {
		for en := range w.Updates() {
			if en != nil {
				lw.mu.Lock()
				lw.entries = append(lw.entries, en)
				lw.mu.Unlock()
			}
		}
	}()
	return lw
}

// last is when the server stored holder's last write before next's first
// one (waiting for that, so that every write of holder has been seen).
func (lw *leaseWrites) last(t *testing.T, holder, next string) time.Time {
	t.Helper()
	instance := func(en jetstream.KeyValueEntry) string {
		var h LeaseHolder
		_ = json.Unmarshal(en.Value(), &h)
		return h.Instance
	}
	var last time.Time
	waitUntil(t, "the new leader's lease write", func() bool {
		lw.mu.Lock()
		defer lw.mu.Unlock()
		for _, en := range lw.entries {
			if en.Operation() != jetstream.KeyValuePut {
				continue
			}
			switch instance(en) {
			case holder:
				last = en.Created()
			case next:
				return !last.IsZero()
			}
		}
		return false
	})
	return last
}

func waitOneLeader(t *testing.T, agents ...*testAgent) *testAgent {
	t.Helper()
	var leader *testAgent
	waitUntil(t, "a leader", func() bool {
		leader = nil
		for _, a := range agents {
			if a.Leader() {
				if leader != nil {
					t.Fatal("two leaders")
				}
				leader = a
			}
		}
		return leader != nil
	})
	return leader
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metric sums a metric's counters, gauges and histogram counts over the
// series carrying every given label value.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

// blackHoleProxy forwards TCP to a NATS server until freeze, after which
// it forwards nothing either way but keeps every connection open: to the
// client the server simply stops answering, as in a network partition.
type blackHoleProxy struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func startBlackHoleProxy(t *testing.T, natsURL string) *blackHoleProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &blackHoleProxy{ln: ln, target: u.Host}
	t.Cleanup(p.close)
	go p.serve()
	return p
}

func (p *blackHoleProxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *blackHoleProxy) freeze() { p.frozen.Store(true) }

func (p *blackHoleProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.pump(s, c)
		go p.pump(c, s)
	}
}

// pump copies src to dst until an error, or drops everything once frozen.
func (p *blackHoleProxy) pump(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			_ = dst.Close()
			return
		}
	}
}

func (p *blackHoleProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}
