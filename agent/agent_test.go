package agent

import (
	"context"
	"crypto/tls"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/luthermonson/go-proxmox"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/pvesim"
)

func TestQEMULifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	e.startAgent(nil)
	vm := uuid.New()

	create := e.request(vm, e.createReq(domain.KindQEMU, "web-1", "debian-12", domain.VMSpec{Cores: 2, MemoryMB: 4096, DiskGB: 20}))
	r := e.ok(create)
	if r.Action != domain.ActionCreate || r.ClusterID != e.cluster || r.Node == "" || r.PVEVMID < DefaultVMIDMin || r.PVEVMID > DefaultVMIDMax || !strings.HasPrefix(r.TaskID, "UPID:") {
		t.Fatalf("create result %+v", r)
	}
	g := e.guest(vm)
	if g.VMID != r.PVEVMID || g.Node != r.Node || g.Kind != "qemu" || g.Name != "web-1" || g.Status != pvesim.StatusRunning {
		t.Fatalf("guest %+v, result %+v", g, r)
	}
	if g.Config["cores"] != "2" || g.Config["memory"] != "4096" || !strings.Contains(g.Config["scsi0"], "size=20G") {
		t.Fatalf("guest config %v", g.Config)
	}
	if tags := protocol.SplitTags(g.Config["tags"]); !slices.Contains(tags, protocol.VMTag(vm)) || !slices.Contains(tags, protocol.TenantTag(e.tenant)) {
		t.Fatalf("tags %q", g.Config["tags"])
	}

	for _, step := range []struct{ action, status string }{
		{domain.ActionStop, pvesim.StatusStopped},
		{domain.ActionStart, pvesim.StatusRunning},
		{domain.ActionShutdown, pvesim.StatusStopped},
		{domain.ActionStart, pvesim.StatusRunning},
		{domain.ActionReboot, pvesim.StatusRunning},
	} {
		r := e.ok(e.request(vm, &domain.VMActionRequested{Action: step.action}))
		if r.Action != step.action || r.PVEVMID != g.VMID || r.ClusterID != e.cluster {
			t.Fatalf("%s result %+v", step.action, r)
		}
		if got := e.guest(vm).Status; got != step.status {
			t.Fatalf("after %s the guest is %s, want %s", step.action, got, step.status)
		}
	}

	r = e.ok(e.request(vm, &domain.VMResizeRequested{Spec: domain.VMSpec{Cores: 4, MemoryMB: 8192, DiskGB: 32}}))
	if r.Action != domain.ActionResize || r.Cores != 4 || r.MemoryMB != 8192 || r.DiskGB != 32 {
		t.Fatalf("resize result %+v", r)
	}
	g = e.guest(vm)
	if g.Config["cores"] != "4" || g.Config["memory"] != "8192" || !strings.Contains(g.Config["scsi0"], "size=32G") {
		t.Fatalf("resized config %v", g.Config)
	}

	r = e.ok(e.request(vm, &domain.VMSnapshotRequested{Name: "before-upgrade"}))
	if r.Action != domain.ActionSnapshot || r.Snapshot != "before-upgrade" {
		t.Fatalf("snapshot result %+v", r)
	}
	if snaps := e.snapshots(g); !slices.Contains(snaps, "before-upgrade") {
		t.Fatalf("snapshots %v", snaps)
	}

	r = e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionDelete}))
	if r.Action != domain.ActionDelete {
		t.Fatalf("delete result %+v", r)
	}
	if gs := e.tagged(vm); len(gs) != 0 {
		t.Fatalf("guest still there after delete: %+v", gs)
	}
	if _, ok := e.sim.Guest(g.VMID); ok {
		t.Fatal("vmid still in use after delete")
	}
	// Deleting a guest that is gone already succeeds.
	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionDelete}))
}

// snapshots lists a guest's snapshots through the PVE API.
func (e *env) snapshots(g pvesim.GuestInfo) []string {
	e.t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	c := proxmox.NewClient(e.srv.URL(), proxmox.WithHTTPClient(hc), proxmox.WithAPIToken(pvesim.DefaultTokenID, pvesim.DefaultTokenSecret))
	var list []struct {
		Name string `json:"name"`
	}
	if err := c.Get(e.ctx, "/nodes/"+g.Node+"/"+g.Kind+"/"+strconv.Itoa(g.VMID)+"/snapshot", &list); err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, s := range list {
		out = append(out, s.Name)
	}
	return out
}

func TestLXCLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	e.startAgent(nil)
	vm := uuid.New()

	r := e.ok(e.request(vm, e.createReq(domain.KindLXC, "ct-1", "debian-12-ct", domain.VMSpec{Cores: 2, MemoryMB: 1024, DiskGB: 10})))
	g := e.guest(vm)
	if g.Kind != "lxc" || g.VMID != r.PVEVMID || g.Node != r.Node || g.Status != pvesim.StatusRunning || g.Config["hostname"] != "ct-1" {
		t.Fatalf("guest %+v, result %+v", g, r)
	}
	if g.Config["cores"] != "2" || g.Config["memory"] != "1024" || !strings.Contains(g.Config["rootfs"], "size=10G") {
		t.Fatalf("guest config %v", g.Config)
	}

	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionShutdown}))
	if got := e.guest(vm).Status; got != pvesim.StatusStopped {
		t.Fatalf("after shutdown: %s", got)
	}
	// Stopping a stopped container (which PVE refuses) is a no-op success.
	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionStop}))
	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionStart}))
	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionReboot}))
	r = e.ok(e.request(vm, &domain.VMResizeRequested{Spec: domain.VMSpec{Cores: 1, MemoryMB: 2048, DiskGB: 12}}))
	if r.Cores != 1 || r.MemoryMB != 2048 || r.DiskGB != 12 {
		t.Fatalf("resize result %+v", r)
	}
	r = e.ok(e.request(vm, &domain.VMSnapshotRequested{Name: "snap1"}))
	if r.Snapshot != "snap1" || !slices.Contains(e.snapshots(e.guest(vm)), "snap1") {
		t.Fatalf("snapshot result %+v", r)
	}
	// Deleting a running container stops it first.
	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionDelete}))
	if gs := e.tagged(vm); len(gs) != 0 {
		t.Fatalf("container still there: %+v", gs)
	}
}

// A request is serialized behind the earlier ones of its VM: a stop sent
// right behind the create only runs once the guest exists, while other VMs'
// creates run alongside.
func TestPerVMOrderAndConcurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{TimeScale: 20 * time.Millisecond})
	e.startAgent(nil)
	type pair struct {
		vm           uuid.UUID
		create, stop eventlog.Event
	}
	var pairs []pair
	for i := range 6 {
		vm := uuid.New()
		c := e.request(vm, e.createReq(domain.KindQEMU, "vm-"+strconv.Itoa(i), "ubuntu-24.04", domain.VMSpec{Cores: 1, MemoryMB: 1024, DiskGB: 10}))
		s := e.request(vm, &domain.VMActionRequested{Action: domain.ActionStop})
		pairs = append(pairs, pair{vm, c, s})
	}
	vmids := map[int]bool{}
	for _, p := range pairs {
		r := e.ok(p.create)
		e.ok(p.stop)
		if vmids[r.PVEVMID] {
			t.Fatalf("vmid %d given twice", r.PVEVMID)
		}
		vmids[r.PVEVMID] = true
		if g := e.guest(p.vm); g.Status != pvesim.StatusStopped {
			t.Fatalf("guest %d is %s after create then stop", g.VMID, g.Status)
		}
	}
}

func TestPlacement(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	e.startAgent(nil)
	e.waitInventory()
	spec := domain.VMSpec{Cores: 1, MemoryMB: 2048, DiskGB: 8}

	// The node with the most free memory wins.
	if err := e.sim.SetNodeCapacity("pve3", 256<<30, 0); err != nil {
		t.Fatal(err)
	}
	if r := e.ok(e.request(uuid.New(), e.createReq(domain.KindQEMU, "a", "debian-12", spec))); r.Node != "pve3" {
		t.Fatalf("placed on %s, want pve3 (most free memory)", r.Node)
	}
	// A requested node is honoured.
	req := e.createReq(domain.KindQEMU, "b", "debian-12", spec)
	req.Node = "pve1"
	if r := e.ok(e.request(uuid.New(), req)); r.Node != "pve1" {
		t.Fatalf("placed on %s, want the requested pve1", r.Node)
	}
	// A node out of capacity fails the clone; placement moves on.
	if err := e.sim.ExhaustNode("pve3"); err != nil {
		t.Fatal(err)
	}
	vm := uuid.New()
	r := e.ok(e.request(vm, e.createReq(domain.KindQEMU, "c", "debian-12", spec)))
	if r.Node == "pve3" || e.guest(vm).Node != r.Node {
		t.Fatalf("placed on %s with pve3 exhausted", r.Node)
	}
	// Every node exhausted: PVE's own message.
	for _, n := range []string{"pve1", "pve2"} {
		if err := e.sim.ExhaustNode(n); err != nil {
			t.Fatal(err)
		}
	}
	vm = uuid.New()
	r = e.result(e.request(vm, e.createReq(domain.KindQEMU, "d", "debian-12", spec)))
	if r.Succeeded || !strings.Contains(r.Error, "insufficient free space") {
		t.Fatalf("create with every node exhausted: %+v", r)
	}
	if gs := e.tagged(vm); len(gs) != 0 {
		t.Fatalf("a failed create left guests: %+v", gs)
	}
	// No node has the memory at all.
	r = e.result(e.request(uuid.New(), e.createReq(domain.KindQEMU, "e", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 1 << 20, DiskGB: 8})))
	if r.Succeeded || !strings.Contains(r.Error, "free memory") {
		t.Fatalf("create larger than any node: %+v", r)
	}
}

func TestFailedTaskReportsPVEMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	e.startAgent(nil)
	e.waitInventory()

	e.sim.FailNextTasks("qmclone", 1, "clone failed: storage 'local-lvm' is not online")
	vm := uuid.New()
	r := e.result(e.request(vm, e.createReq(domain.KindQEMU, "x", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8})))
	if r.Succeeded || r.Error != "clone failed: storage 'local-lvm' is not online" || r.Action != domain.ActionCreate {
		t.Fatalf("result %+v", r)
	}
	if gs := e.tagged(vm); len(gs) != 0 {
		t.Fatalf("guests left: %+v", gs)
	}

	// A failing start of an existing VM.
	vm = uuid.New()
	e.ok(e.request(vm, e.createReq(domain.KindQEMU, "y", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8})))
	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionStop}))
	e.sim.FailNextTasks("qmstart", 1, "")
	r = e.result(e.request(vm, &domain.VMActionRequested{Action: domain.ActionStart}))
	if r.Succeeded || r.Error != "start failed: QEMU exited with code 1" || !strings.HasPrefix(r.TaskID, "UPID:") {
		t.Fatalf("start result %+v", r)
	}

	// Unknown template, unknown cluster, unknown guest: failures with a reason.
	r = e.result(e.request(uuid.New(), e.createReq(domain.KindQEMU, "z", "windows-95", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8})))
	if r.Succeeded || !strings.Contains(r.Error, `template "windows-95"`) {
		t.Fatalf("unknown template: %+v", r)
	}
	req := e.createReq(domain.KindQEMU, "z", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8})
	req.ClusterID = uuid.New()
	r = e.result(e.request(uuid.New(), req))
	if r.Succeeded || !strings.Contains(r.Error, "not registered") {
		t.Fatalf("unknown cluster: %+v", r)
	}
	r = e.result(e.request(uuid.New(), &domain.VMActionRequested{Action: domain.ActionStart}))
	if r.Succeeded || !strings.Contains(r.Error, "no guest tagged") {
		t.Fatalf("start of an unknown VM: %+v", r)
	}
}

func TestServerErrorsAreRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	_, reg := e.startAgent(nil)
	e.waitInventory()

	e.sim.FailNextRequests(4, 500)
	vm := uuid.New()
	e.ok(e.request(vm, e.createReq(domain.KindQEMU, "retry", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8})))
	e.guest(vm)
	if n := metric(t, reg, "accountdb_agent_retries_total", nil); n < 1 {
		t.Fatalf("retries counted: %v", n)
	}
	e.sim.FailNextRequests(3, 502)
	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionStop}))
	if g := e.guest(vm); g.Status != pvesim.StatusStopped {
		t.Fatalf("guest %s after stop", g.Status)
	}
}

func TestLockIsRetriedUntilReleased(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	_, reg := e.startAgent(func(c *Config) { c.RetryAttempts = 1000 })
	vm := uuid.New()
	e.ok(e.request(vm, e.createReq(domain.KindQEMU, "locked", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8})))
	g := e.guest(vm)
	if err := e.sim.HoldLock(g.VMID, "backup"); err != nil {
		t.Fatal(err)
	}
	stop := e.request(vm, &domain.VMActionRequested{Action: domain.ActionStop})
	e.waitFor("a retry on the lock", func() bool { return metric(t, reg, "accountdb_agent_retries_total", nil) >= 2 })
	if len(e.resultsFor(stop)) != 0 {
		t.Fatal("a result while the lock is held")
	}
	if err := e.sim.ReleaseLock(g.VMID); err != nil {
		t.Fatal(err)
	}
	e.ok(stop)
	if g := e.guest(vm); g.Status != pvesim.StatusStopped {
		t.Fatalf("guest %s after stop", g.Status)
	}
}

func TestLockExhaustsRetryBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	e.startAgent(func(c *Config) { c.RetryAttempts = 3 })
	vm := uuid.New()
	e.ok(e.request(vm, e.createReq(domain.KindQEMU, "locked", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8})))
	if err := e.sim.HoldLock(e.guest(vm).VMID, "backup"); err != nil {
		t.Fatal(err)
	}
	r := e.result(e.request(vm, &domain.VMActionRequested{Action: domain.ActionReboot}))
	if r.Succeeded || r.Error != "VM is locked (backup)" {
		t.Fatalf("result %+v", r)
	}
}

// An agent stopped in the middle of a slow clone leaves its request
// unacknowledged; the next agent finds the half-made guest by its
// description, waits out the clone's lock and finishes it: one guest.
func TestAgentKilledMidCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{TimeScale: 400 * time.Millisecond})
	stopA, _ := e.startAgent(func(c *Config) { c.ShutdownTimeout = time.Millisecond; c.RetryAttempts = 1000 })
	vm := uuid.New()
	create := e.request(vm, e.createReq(domain.KindQEMU, "slow", "debian-12", domain.VMSpec{Cores: 2, MemoryMB: 2048, DiskGB: 16}))
	e.waitFor("the clone to start", func() bool {
		for _, g := range e.sim.Guests() {
			if g.Name == "slow" && g.Lock == "clone" {
				return true
			}
		}
		return false
	})
	stopA()
	if n := len(e.resultsFor(create)); n != 0 {
		t.Fatalf("the killed agent published %d results", n)
	}

	e.startAgent(func(c *Config) { c.RetryAttempts = 1000 })
	r := e.ok(create)
	g := e.guest(vm)
	if g.VMID != r.PVEVMID || g.Status != pvesim.StatusRunning || g.Config["cores"] != "2" || !strings.Contains(g.Config["scsi0"], "size=16G") {
		t.Fatalf("guest %+v, result %+v", g, r)
	}
	named := 0
	for _, g := range e.sim.Guests() {
		if g.Name == "slow" {
			named++
		}
	}
	if named != 1 {
		t.Fatalf("%d guests named slow, want 1", named)
	}
	if rs := e.resultsFor(create); len(rs) != 1 {
		t.Fatalf("%d results", len(rs))
	}
}

// An agent that dies without a word (its connection cut, so not even a
// Nak) mid-clone: JetStream redelivers after AckWait to the next agent,
// which finishes the same guest.
func TestAgentCrashMidCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{TimeScale: 400 * time.Millisecond})
	nc, js := e.connect()
	stopA, _ := e.startAgentOn(js, func(c *Config) { c.ShutdownTimeout = time.Millisecond })
	vm := uuid.New()
	create := e.request(vm, e.createReq(domain.KindLXC, "crashed", "debian-12-ct", domain.VMSpec{Cores: 1, MemoryMB: 1024, DiskGB: 6}))
	e.waitFor("the clone to start", func() bool {
		for _, g := range e.sim.Guests() {
			if g.Name == "crashed" && g.Lock == "clone" {
				return true
			}
		}
		return false
	})
	nc.Close()
	stopA()

	e.startAgent(func(c *Config) { c.RetryAttempts = 1000 })
	r := e.ok(create)
	g := e.guest(vm)
	if g.VMID != r.PVEVMID || g.Kind != "lxc" || g.Status != pvesim.StatusRunning || !strings.Contains(g.Config["rootfs"], "size=6G") {
		t.Fatalf("guest %+v, result %+v", g, r)
	}
	named := 0
	for _, g := range e.sim.Guests() {
		if g.Config["hostname"] == "crashed" {
			named++
		}
	}
	if named != 1 {
		t.Fatalf("%d containers named crashed, want 1", named)
	}
}

// The same request delivered twice (re-published by a relay outside the
// duplicate window) yields one guest, and one stored result.
func TestDuplicateRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	stop, _ := e.startAgent(nil)
	vm := uuid.New()
	create := e.request(vm, e.createReq(domain.KindLXC, "dup", "debian-12-ct", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 4}))
	e.publishEnvelope(create, create.EventID.String()+"-again")
	e.ok(create)
	e.waitFor("both deliveries acknowledged", func() bool { return e.pending(t) == 0 })
	stop()
	if gs := e.tagged(vm); len(gs) != 1 {
		t.Fatalf("%d guests", len(gs))
	}
	if rs := e.resultsFor(create); len(rs) != 1 || !rs[0].Succeeded {
		t.Fatalf("results %+v", rs)
	}
}

// pending counts requests the agent's consumer has not acknowledged.
func (e *env) pending(t *testing.T) uint64 {
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	c, err := e.js.Consumer(ctx, "ACCOUNTDB_EVENTS", ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.NumPending + uint64(info.NumAckPending)
}

func TestReconciliation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	e.startAgent(func(c *Config) { c.ReconcileInterval = 100 * time.Millisecond })

	e.waitInventory()
	e.mu.Lock()
	inv := e.inventories[0]
	e.mu.Unlock()
	want := map[string]protocol.Template{
		"debian-12":    {Name: "debian-12", Kind: "qemu", OS: "l26", Node: "pve1", PVEVMID: 9000},
		"ubuntu-24.04": {Name: "ubuntu-24.04", Kind: "qemu", OS: "l26", Node: "pve1", PVEVMID: 9001},
		"debian-12-ct": {Name: "debian-12-ct", Kind: "lxc", OS: "debian", Node: "pve1", PVEVMID: 9100},
		// Container OS templates, created from rather than cloned.
		"debian-12-standard":    {Name: "debian-12-standard", Kind: "lxc", OS: "debian", OSTemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"},
		"ubuntu-24.04-standard": {Name: "ubuntu-24.04-standard", Kind: "lxc", OS: "ubuntu", OSTemplate: "local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst"},
	}
	if inv.ClusterID != e.cluster || len(inv.Templates) != len(want) || len(inv.Nodes) != 3 {
		t.Fatalf("inventory %+v", inv)
	}
	for _, tp := range inv.Templates {
		if want[tp.Name] != tp {
			t.Fatalf("template %+v, want %+v", tp, want[tp.Name])
		}
	}
	for _, n := range inv.Nodes {
		if !n.Online || n.Cores != pvesim.DefaultNodeCores || n.MemoryMB != pvesim.DefaultNodeMemory>>20 || n.FreeMemoryMB <= 0 || n.FreeMemoryMB >= n.MemoryMB || n.DiskGB != pvesim.DefaultNodeStorage>>30 {
			t.Fatalf("node %+v", n)
		}
	}

	kept, dropped := uuid.New(), uuid.New()
	spec := domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8}
	rk := e.ok(e.request(kept, e.createReq(domain.KindQEMU, "kept", "debian-12", spec)))
	rd := e.ok(e.request(dropped, e.createReq(domain.KindLXC, "dropped", "debian-12-ct", spec)))
	observed := func(o protocol.Observation) map[uuid.UUID]protocol.ObservedGuest {
		m := map[uuid.UUID]protocol.ObservedGuest{}
		for _, g := range o.Guests {
			m[g.VMID] = g
		}
		return m
	}
	e.waitFor("an observation of both guests running", func() bool {
		if len(e.observations) == 0 {
			return false
		}
		o := observed(e.observations[len(e.observations)-1])
		return o[kept].Status == "running" && o[dropped].Status == "running"
	})
	e.mu.Lock()
	last := observed(e.observations[len(e.observations)-1])
	e.mu.Unlock()
	if g := last[kept]; g.TenantID != e.tenant || g.Node != rk.Node || g.PVEVMID != rk.PVEVMID || len(last) != 2 {
		t.Fatalf("observation %+v", last)
	}

	// Changes made behind the agent's back.
	if err := e.sim.SetGuestStatus(rk.PVEVMID, pvesim.StatusStopped); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.DropGuest(rd.PVEVMID); err != nil {
		t.Fatal(err)
	}
	e.waitFor("an observation of the drift", func() bool {
		o := e.observations[len(e.observations)-1]
		m := observed(o)
		_, stillThere := m[dropped]
		return o.ClusterID == e.cluster && m[kept].Status == "stopped" && !stillThere
	})

	// Its node goes down: the guest is still observed, as "unknown" (what
	// PVE lists), neither stopped nor gone; the core records no drift.
	if err := e.sim.SetNodeOnline(rk.Node, false); err != nil {
		t.Fatal(err)
	}
	e.waitFor("an observation of the guest unknown", func() bool {
		g, ok := observed(e.observations[len(e.observations)-1])[kept]
		return ok && g.Status == "unknown" && g.Node == rk.Node
	})
}

// A cluster registered while the agent runs is learned live; one whose
// secret was sealed for another cluster cannot be used, and says why.
func TestClusterRegisteredLive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	ta := e.runAgent(e.js, nil, nil)
	e.waitInventory()
	// Registrations and VM requests reach the agent by separate consumers:
	// a request sent right after a registration may be served before the
	// agent has read it, so the test waits for the registry to hold it.
	learned := func(id uuid.UUID, name string) {
		t.Helper()
		e.waitFor("the agent to learn cluster "+name, func() bool {
			ta.registry.mu.Lock()
			defer ta.registry.mu.Unlock()
			c, ok := ta.registry.clusters[id]
			return ok && c.Name == name
		})
	}

	second, err := pvesim.StartServer(pvesim.Options{Nodes: 1}, "127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = second.Close() })
	t.Cleanup(func() { checkPVERequests(t, second.Simulator()) })
	id := uuid.New()
	e.registerCluster(id, second, pvesim.DefaultTokenSecret)
	e.waitFor("the second cluster's inventory", func() bool {
		for _, inv := range e.inventories {
			if inv.ClusterID == id && len(inv.Nodes) == 1 {
				return true
			}
		}
		return false
	})
	vm := uuid.New()
	req := e.createReq(domain.KindQEMU, "there", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8})
	req.ClusterID = id
	if r := e.ok(e.request(vm, req)); r.ClusterID != id || r.Node != "pve1" {
		t.Fatalf("result %+v", r)
	}
	if len(e.tagged(vm)) != 0 {
		t.Fatal("created on the wrong cluster")
	}
	// Actions find the guest on whichever cluster holds it.
	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionStop}))

	// A secret sealed for another record does not open.
	bad := uuid.New()
	sealed, err := e.vault.Seal(pvesim.DefaultTokenSecret, uuid.New().String())
	if err != nil {
		t.Fatal(err)
	}
	e.publish(domain.PlatformTenant, eventlog.StreamID{Type: domain.StreamCluster, ID: bad}, &domain.ClusterRegistered{Name: "bad", APIURL: e.srv.URL(), TokenID: pvesim.DefaultTokenID, SealedSecret: sealed, TLSFingerprint: domain.CertificateFingerprint(e.srv.Certificate())})
	learned(bad, "bad")
	req = e.createReq(domain.KindQEMU, "nowhere", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8})
	req.ClusterID = bad
	r := e.result(e.request(uuid.New(), req))
	if r.Succeeded || !strings.Contains(r.Error, "cannot be opened") {
		t.Fatalf("result %+v", r)
	}

	// The second cluster registered again at another URL with the secret
	// sealed for its first: the token is never sent there.
	forged, err := e.vault.Seal(pvesim.DefaultTokenSecret, domain.ClusterSecretBinding(id, second.URL()))
	if err != nil {
		t.Fatal(err)
	}
	e.publish(domain.PlatformTenant, eventlog.StreamID{Type: domain.StreamCluster, ID: id}, &domain.ClusterRegistered{Name: "moved", APIURL: e.srv.URL(), TokenID: pvesim.DefaultTokenID, SealedSecret: forged, TLSFingerprint: domain.CertificateFingerprint(e.srv.Certificate())})
	learned(id, "moved")
	req = e.createReq(domain.KindQEMU, "moved", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8})
	req.ClusterID = id
	moved := uuid.New()
	if r := e.result(e.request(moved, req)); r.Succeeded || !strings.Contains(r.Error, "cannot be opened") {
		t.Fatalf("a secret sealed for another URL was used: result %+v", r)
	}
	if len(e.tagged(moved)) != 0 {
		t.Fatal("created on the URL the registration was moved to")
	}
}
