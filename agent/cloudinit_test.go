package agent

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/domaintest"
	"github.com/accountdb/accountdb/internal/shacrypt"
	"github.com/accountdb/accountdb/pvesim"
)

// testCloudInit is cloud-init settings as the core records them: two keys
// (base64 with '+' and '/', which must survive Proxmox's URL-encoding) and
// a password's SHA-512 crypt hash.
func testCloudInit(t *testing.T, hostname string) *domain.CloudInit {
	t.Helper()
	r := rand.New(rand.NewPCG(rand.Uint64(), 0))
	var keys, fps []string
	for len(keys) < 2 {
		k := domaintest.SSHKeyAdded(r)
		keys, fps = append(keys, k.PublicKey), append(fps, k.Fingerprint)
	}
	return &domain.CloudInit{User: "ada", Hostname: hostname, PasswordHash: shacrypt.SHA512("correct horse battery"),
		SSHKeys: keys, SSHKeyFingerprints: fps, Nameservers: []string{"192.0.2.53", "2001:db8::53"}, SearchDomain: "example.net"}
}

// booted is what the guest of vmid learnt at its boot, failing the test
// when it booted without cloud-init data.
func (e *env) booted(vmid int) pvesim.CloudInitInfo {
	e.t.Helper()
	info, ok := e.sim.CloudInit(vmid)
	if !ok || info.Booted == nil {
		e.t.Fatalf("guest %d: booted without cloud-init data (%+v)", vmid, info)
	}
	return info
}

// The guest's first boot already sees the user, keys, hostname, password
// hash and DNS: the agent configured the clone and regenerated its drive
// before starting it.
func TestCreateQEMUWithCloudInit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	e.startAgent(nil)
	vm := uuid.New()
	ci := testCloudInit(t, "web-a")
	req := e.createReq(domain.KindQEMU, "web-1", "debian-12", domain.VMSpec{Cores: 2, MemoryMB: 2048, DiskGB: 10})
	req.CloudInit = ci
	r := e.ok(e.request(vm, req))

	info := e.booted(r.PVEVMID)
	b := info.Booted
	if b.User != "ada" || b.Hostname != "web-a" || b.Password != ci.PasswordHash || !slices.Equal(b.SSHKeys, ci.SSHKeys) ||
		!slices.Equal(b.Nameservers, ci.Nameservers) || !slices.Equal(b.SearchDomains, []string{"example.net"}) || b.FQDN != "web-a.example.net" {
		t.Fatalf("the guest booted with %+v, want %+v", b, ci)
	}
	if len(b.Interfaces) != 1 || b.Interfaces[0].IPv4 != "dhcp" {
		t.Fatalf("interfaces %+v", b.Interfaces)
	}
	if len(info.Pending) != 0 || info.Stale {
		t.Fatalf("pending %v, stale %v after the first boot", info.Pending, info.Stale)
	}
	if !strings.Contains(b.Files.UserData, "ssh_authorized_keys") || !strings.Contains(b.Files.UserData, ci.PasswordHash) {
		t.Fatalf("user-data %q", b.Files.UserData)
	}
	g := e.guest(vm)
	if g.Config["cipassword"] == "" || strings.Contains(g.Config["sshkeys"], " ") {
		t.Fatalf("config %v", g.Config)
	}
}

// A container is given its hostname and DNS through its config; it reads
// them when it starts.
func TestCreateLXCWithCloudInit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	e.startAgent(nil)
	vm := uuid.New()
	req := e.createReq(domain.KindLXC, "ct-1", "debian-12-ct", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 4})
	req.CloudInit = &domain.CloudInit{Hostname: "cache-a", Nameservers: []string{"192.0.2.53"}, SearchDomain: "example.net"}
	r := e.ok(e.request(vm, req))
	b := e.booted(r.PVEVMID).Booted
	if b.Hostname != "cache-a" || !slices.Equal(b.Nameservers, []string{"192.0.2.53"}) || !slices.Equal(b.SearchDomains, []string{"example.net"}) {
		t.Fatalf("the container started with %+v", b)
	}
	if g := e.guest(vm); g.Config["hostname"] != "cache-a" || g.Status != pvesim.StatusRunning {
		t.Fatalf("guest %+v", g)
	}
}

// A container created from an OS template (not cloned) gets root's keys and
// password at creation, as Proxmox takes them only there, and then its
// hostname and DNS as any container; the OS template is offered in the
// inventory under its short name.
func TestCreateLXCFromOSTemplateWithKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	e.startAgent(nil)
	e.waitInventory()
	found := false
	for _, tpl := range e.inventory().Templates {
		if tpl.Name == "debian-12-standard" && tpl.Kind == kindLXC && tpl.OS == "debian" &&
			tpl.OSTemplate == "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst" {
			found = true
		}
	}
	if !found {
		t.Fatalf("the OS template is not in the inventory: %+v", e.inventory().Templates)
	}
	vm := uuid.New()
	ci := testCloudInit(t, "db-a")
	ci.User = ""
	req := e.createReq(domain.KindLXC, "db-1", "debian-12-standard", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 6})
	req.CloudInit = ci
	r := e.ok(e.request(vm, req))
	b := e.booted(r.PVEVMID).Booted
	if !slices.Equal(b.SSHKeys, ci.SSHKeys) || b.Password != ci.PasswordHash || b.Hostname != "db-a" || !slices.Equal(b.Nameservers, ci.Nameservers) {
		t.Fatalf("the container started with %+v, want keys %v and the hash", b, ci.SSHKeys)
	}
	if g := e.guest(vm); g.Status != pvesim.StatusRunning || !strings.HasPrefix(g.Config["rootfs"], "local-lvm:") || !strings.Contains(g.Config["rootfs"], "size=6G") {
		t.Fatalf("guest %+v", g)
	}
}

// configure writes new settings to a running guest: Proxmox holds them as
// pending cloud-init changes, and the guest gets them at its next boot.
func TestConfigureCloudInitIsPendingUntilReboot(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	e.startAgent(nil)
	vm := uuid.New()
	req := e.createReq(domain.KindQEMU, "web-2", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 1024, DiskGB: 8})
	req.CloudInit = testCloudInit(t, "web-2")
	r := e.ok(e.request(vm, req))

	next := *req.CloudInit
	next.SSHKeys, next.SSHKeyFingerprints = next.SSHKeys[:1], next.SSHKeyFingerprints[:1]
	next.Nameservers, next.User = []string{"198.51.100.53"}, ""
	e.ok(e.request(vm, &domain.VMCloudInitUpdateRequested{Kind: domain.KindQEMU, CloudInit: next}))
	info := e.booted(r.PVEVMID)
	if !slices.Contains(info.Pending, "sshkeys") || !slices.Contains(info.Pending, "nameserver") || !slices.Contains(info.Pending, "ciuser") {
		t.Fatalf("pending %v, want sshkeys, nameserver and ciuser", info.Pending)
	}
	if len(info.Booted.SSHKeys) != 2 {
		t.Fatalf("the running guest already sees %v", info.Booted.SSHKeys)
	}
	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionReboot}))
	info = e.booted(r.PVEVMID)
	if b := info.Booted; !slices.Equal(b.SSHKeys, next.SSHKeys) || !slices.Equal(b.Nameservers, next.Nameservers) || b.User != "" || len(info.Pending) != 0 {
		t.Fatalf("after the reboot the guest has %+v, pending %v", b, info.Pending)
	}
}

// stepsOf are the step results of a request, in the order they came.
func (e *env) stepsOf(resultsFor []protocol.Result) []string {
	var out []string
	for _, r := range resultsFor {
		if r.Step != "" {
			out = append(out, r.Step)
		}
	}
	return out
}

// A rebuild destroys the guest, clones the template under the same vmid,
// configures it and starts it; each step is reported before the outcome.
func TestRebuild(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	e.startAgent(nil)
	vm := uuid.New()
	ci := testCloudInit(t, "web-3")
	req := e.createReq(domain.KindQEMU, "web-3", "debian-12", domain.VMSpec{Cores: 2, MemoryMB: 2048, DiskGB: 12})
	req.CloudInit = ci
	req.Network = &domain.VMNetwork{PoolID: uuid.New(), Bridge: "vmbr0", VLAN: 9, IPv4: "203.0.113.30/24", Gateway4: "203.0.113.1",
		IPv6: "2001:db8:30::1e/128", Gateway6: "2001:db8:30::1"}
	created := e.ok(e.request(vm, req))
	e.ok(e.request(vm, &domain.VMSnapshotRequested{Name: "before"}))

	rebuild := e.request(vm, &domain.VMRebuildRequested{Template: "ubuntu-24.04", Kind: domain.KindQEMU, Name: "web-3", Spec: req.Spec,
		ClusterID: e.cluster, Node: created.Node, VMID: created.PVEVMID, CloudInit: ci, Network: req.Network})
	e.waitFor("the rebuild's outcome", func() bool {
		for _, r := range e.results {
			if r.RequestEventID == rebuild.EventID && r.Step == "" {
				return true
			}
		}
		return false
	})
	rs := e.resultsFor(rebuild)
	final := rs[len(rs)-1]
	if !final.Succeeded || final.Step != "" || final.PVEVMID != created.PVEVMID || final.Node != created.Node {
		t.Fatalf("outcome %+v (created as %d on %s)", final, created.PVEVMID, created.Node)
	}
	if steps := e.stepsOf(rs); !slices.Equal(steps, domain.RebuildSteps) {
		t.Fatalf("steps %v, want %v", steps, domain.RebuildSteps)
	}
	g := e.guest(vm)
	if g.Status != pvesim.StatusRunning || !strings.Contains(g.Config["description"], rebuild.EventID.String()) ||
		slices.Contains(e.snapshots(g), "before") || !strings.Contains(g.Config["scsi0"], "size=12G") {
		t.Fatalf("rebuilt guest %+v", g)
	}
	if b := e.booted(g.VMID).Booted; b.User != "ada" || !slices.Equal(b.SSHKeys, ci.SSHKeys) || b.Hostname != "web-3" {
		t.Fatalf("the rebuilt guest booted with %+v", b)
	}
	// The rebuilt guest keeps the VM's pool address (ipconfig0, bridge, tag).
	if g.Config["ipconfig0"] != req.Network.IPConfig() || !strings.Contains(g.Config["net0"], "bridge=vmbr0") || !strings.Contains(g.Config["net0"], "tag=9") {
		t.Fatalf("the rebuilt guest's network: ipconfig0 %q, net0 %q", g.Config["ipconfig0"], g.Config["net0"])
	}
}

// An agent stopped in the middle of a rebuild leaves the request to the
// next agent, which finishes the same clone: one guest, and the steps
// reported once each. It is stopped after the old guest is destroyed, with
// the clone under way; or after the clone is configured, with its first
// start under way.
func TestRebuildResumesAfterAgentDies(t *testing.T) {
	t.Parallel()
	for _, at := range []string{domain.RebuildDestroyed, domain.RebuildConfigured} {
		t.Run("after "+at, func(t *testing.T) {
			t.Parallel()
			testRebuildResumes(t, at)
		})
	}
}

func testRebuildResumes(t *testing.T, at string) {
	e := newEnv(t, pvesim.Options{TimeScale: 300 * time.Millisecond})
	stopA, _ := e.startAgent(func(c *Config) { c.ShutdownTimeout = time.Millisecond; c.RetryAttempts = 1000 })
	vm := uuid.New()
	req := e.createReq(domain.KindQEMU, "web-4", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 1024, DiskGB: 8})
	req.CloudInit = testCloudInit(t, "web-4")
	created := e.ok(e.request(vm, req))

	rebuild := e.request(vm, &domain.VMRebuildRequested{Template: "debian-12", Kind: domain.KindQEMU, Name: "web-4", Spec: req.Spec,
		ClusterID: e.cluster, Node: created.Node, VMID: created.PVEVMID, CloudInit: req.CloudInit})
	e.waitFor("the step "+at+" and the next under way", func() bool {
		for _, r := range e.results {
			if r.RequestEventID == rebuild.EventID && r.Step == at {
				return e.sim.RunningTasks() > 0
			}
		}
		return false
	})
	stopA()
	if steps := e.stepsOf(e.resultsFor(rebuild)); steps[len(steps)-1] != at {
		t.Fatalf("the stopped agent reported %v", steps)
	}
	if rs := e.resultsFor(rebuild); rs[len(rs)-1].Step == "" {
		t.Fatalf("the stopped agent finished the rebuild: %+v", rs)
	}

	e.startAgent(func(c *Config) { c.RetryAttempts = 1000 })
	e.waitFor("the rebuild's outcome", func() bool {
		for _, r := range e.results {
			if r.RequestEventID == rebuild.EventID && r.Step == "" {
				return true
			}
		}
		return false
	})
	rs := e.resultsFor(rebuild)
	if final := rs[len(rs)-1]; !final.Succeeded {
		t.Fatalf("outcome %+v", final)
	}
	if steps := e.stepsOf(rs); !slices.Equal(steps, domain.RebuildSteps) {
		t.Fatalf("steps %v, want each of %v once", steps, domain.RebuildSteps)
	}
	named := 0
	for _, g := range e.sim.Guests() {
		if g.Name == "web-4" {
			named++
		}
	}
	g := e.guest(vm)
	if named != 1 || g.Status != pvesim.StatusRunning {
		t.Fatalf("%d guests named web-4; the VM's is %+v", named, g)
	}
	if b := e.booted(g.VMID).Booted; b.User != "ada" || b.Hostname != "web-4" {
		t.Fatalf("the rebuilt guest booted with %+v", b)
	}
}
