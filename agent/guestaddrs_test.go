package agent

import (
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
	"github.com/accountdb/accountdb/pvesim"
)

// guestReport waits for a report about vm after the i-th (0-based) one.
func (e *env) guestReport(vm uuid.UUID, after int) protocol.GuestAddresses {
	e.t.Helper()
	var got protocol.GuestAddresses
	e.waitFor("a guest report of "+vm.String(), func() bool {
		n := 0
		for _, g := range e.guestReports {
			if g.VMID == vm {
				if n == after {
					got = g
					return true
				}
				n++
			}
		}
		return false
	})
	if got.TenantID != e.tenant {
		e.t.Fatalf("guest report of another tenant: %+v", got)
	}
	return got
}

// pveConfig sets a guest's configuration through go-proxmox, as the agent
// does, so pvesim checks the values against Proxmox's schema.
func (e *env) pveConfig(g pvesim.GuestInfo, opts map[string]any) {
	e.t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	c := proxmox.NewClient(e.srv.URL(), proxmox.WithHTTPClient(hc), proxmox.WithAPIToken(pvesim.DefaultTokenID, pvesim.DefaultTokenSecret))
	path := "/nodes/" + g.Node + "/" + g.Kind + "/" + strconv.Itoa(g.VMID) + "/config"
	if err := c.Put(e.ctx, path, opts, nil); err != nil {
		e.t.Fatalf("config %v: %v", opts, err)
	}
}

// A started QEMU VM is running at once; its guest's addresses come later,
// once its guest agent answers (pvesim: "QEMU guest agent is not running"
// until the guest has booted), loopback and link-local left out. With a
// pool's ipconfig0 and net0 set before the start, the guest reports the
// pool's addresses.
func TestQEMUGuestAddressesAfterStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{TimeScale: 10 * time.Millisecond, GuestBoot: 20})
	e.startAgent(nil)
	vm := uuid.New()
	create := e.request(vm, e.createReq(domain.KindQEMU, "web-1", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 1024, DiskGB: 10}))
	r := e.ok(create)
	first := e.guestReport(vm, 0)
	if len(first.Addresses) != 1 || !first.ObservedAt.After(r.FinishedAt) {
		t.Fatalf("first report %+v after result at %s", first, r.FinishedAt)
	}
	if a := first.Addresses[0]; a[:4] != "10.2" { // pvesim's DHCP lease: the template has no ipconfig0
		t.Fatalf("DHCP address %q", a)
	}

	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionStop}))
	n := domain.VMNetwork{Bridge: "vmbr1", VLAN: 30, IPv4: "192.0.2.10/24", Gateway4: "192.0.2.1", IPv6: "2001:db8::a/128", Gateway6: "2001:db8::1"}
	g := e.guest(vm)
	e.pveConfig(g, map[string]any{"ipconfig0": n.IPConfig(), "net0": n.QEMUNet(g.Config["net0"])})
	if got := e.guest(vm).Config; got["ipconfig0"] != "ip=192.0.2.10/24,gw=192.0.2.1,ip6=2001:db8::a/128,gw6=2001:db8::1" ||
		got["net0"] != g.Config["net0"][:len("virtio=")+17]+",bridge=vmbr1,tag=30" {
		t.Fatalf("config after the pool's network: %v", got)
	}
	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionStart}))
	second := e.guestReport(vm, 1)
	if !slices.Equal(second.Addresses, []string{"192.0.2.10", "2001:db8::a"}) {
		t.Fatalf("after start with the pool's network: %v", second.Addresses)
	}
}

// A container's interfaces, with its net0 set from a pool.
func TestLXCGuestAddressesAfterStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	e.startAgent(nil)
	vm := uuid.New()
	e.ok(e.request(vm, e.createReq(domain.KindLXC, "ct-1", "debian-12-ct", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8})))
	if first := e.guestReport(vm, 0); len(first.Addresses) != 1 {
		t.Fatalf("first report %+v", first)
	}
	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionStop}))
	g := e.guest(vm)
	hw := propertyValue(g.Config["net0"], "hwaddr")
	n := domain.VMNetwork{Bridge: "vmbr0", VLAN: 12, IPv4: "198.51.100.7/24", Gateway4: "198.51.100.1", IPv6: "2001:db8:7::7/128", Gateway6: "2001:db8:7::1"}
	e.pveConfig(g, map[string]any{"net0": n.LXCNet("eth0", hw)})
	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionStart}))
	// pve-container's interfaces list one address per family and
	// interface, the last `ip a` shows: the link-local IPv6 one, which is
	// left out. So a container reports its IPv4 address only.
	if second := e.guestReport(vm, 1); !slices.Equal(second.Addresses, []string{"198.51.100.7"}) {
		t.Fatalf("after start with the pool's network: %v", second.Addresses)
	}
}

func propertyValue(list, key string) string {
	for _, kv := range strings.Split(list, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// A create carrying a pool's address configures the guest with it before
// its first start (qemu: ipconfig0 and net0's bridge and tag; lxc: net0),
// with the pool's nameservers, and the guest then reports that address.
func TestCreateWithAPoolAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	e.startAgent(nil)
	n := &domain.VMNetwork{PoolID: uuid.New(), Bridge: "vmbr0", VLAN: 40, IPv4: "203.0.113.9/24", Gateway4: "203.0.113.1",
		IPv6: "2001:db8:9::9/128", Gateway6: "2001:db8:9::1", Nameservers: []string{"203.0.113.53"}}
	for _, c := range []struct {
		kind     domain.VMKind
		template string
		key      string
		want     string
		reported []string
	}{
		{domain.KindQEMU, "debian-12", "ipconfig0", "ip=203.0.113.9/24,gw=203.0.113.1,ip6=2001:db8:9::9/128,gw6=2001:db8:9::1",
			[]string{"203.0.113.9", "2001:db8:9::9"}},
		{domain.KindLXC, "debian-12-ct", "net0", "ip=203.0.113.9/24,gw=203.0.113.1,ip6=2001:db8:9::9/128,gw6=2001:db8:9::1",
			[]string{"203.0.113.9"}}, // pve-container shows the link-local IPv6 address, left out
	} {
		vm := uuid.New()
		req := e.createReq(c.kind, "net-"+string(c.kind), c.template, domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 10})
		req.Network = n
		e.ok(e.request(vm, req))
		g := e.guest(vm)
		if !strings.Contains(g.Config[c.key], c.want) || !strings.Contains(g.Config["net0"], "bridge=vmbr0") ||
			!strings.Contains(g.Config["net0"], "tag=40") || g.Config["nameserver"] != "203.0.113.53" {
			t.Fatalf("%s config %v", c.kind, g.Config)
		}
		if c.kind == domain.KindLXC && !strings.Contains(g.Config["net0"], "type=veth") {
			t.Fatalf("the container's NIC lost its other options: %s", g.Config["net0"])
		}
		if got := e.guestReport(vm, 0); !slices.Equal(got.Addresses, c.reported) {
			t.Fatalf("%s reported %v, want %v", c.kind, got.Addresses, c.reported)
		}
	}
}

// A VM that booted under an agent which stopped before its guest answered
// still gets its addresses: the next agent's reconciliation watches every
// running guest it finds. A guest started by hand on Proxmox is watched
// too, at the next reconciliation.
func TestGuestAddressesAfterAgentRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{TimeScale: 10 * time.Millisecond, GuestBoot: 20})
	// The first agent gives up on the guest at once, as one that stopped
	// before the guest agent answered would.
	stop, _ := e.startAgent(func(c *Config) { c.GuestAddressTimeout, c.GuestAddressPollMax = time.Nanosecond, time.Nanosecond })
	vm, hand := uuid.New(), uuid.New()
	e.ok(e.request(vm, e.createReq(domain.KindQEMU, "web-1", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 1024, DiskGB: 10})))
	e.ok(e.request(hand, e.createReq(domain.KindQEMU, "web-2", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 1024, DiskGB: 10})))
	e.ok(e.request(hand, &domain.VMActionRequested{Action: domain.ActionStop}))
	stop()
	e.mu.Lock()
	early := len(e.guestReports)
	e.mu.Unlock()
	if early != 0 {
		t.Fatalf("the first agent reported %d times", early)
	}

	e.startAgent(func(c *Config) { c.ReconcileInterval = 50 * time.Millisecond })
	if got := e.guestReport(vm, 0); len(got.Addresses) != 1 {
		t.Fatalf("after the restart: %+v", got)
	}
	g := e.guest(hand)
	e.pveCall(g, "/status/start")
	if got := e.guestReport(hand, 0); len(got.Addresses) != 1 {
		t.Fatalf("after a start by hand: %+v", got)
	}
}

// pveCall posts to a guest's path through go-proxmox, as someone working
// on Proxmox by hand would.
func (e *env) pveCall(g pvesim.GuestInfo, path string) {
	e.t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	c := proxmox.NewClient(e.srv.URL(), proxmox.WithHTTPClient(hc), proxmox.WithAPIToken(pvesim.DefaultTokenID, pvesim.DefaultTokenSecret))
	if err := c.Post(e.ctx, "/nodes/"+g.Node+"/"+g.Kind+"/"+strconv.Itoa(g.VMID)+path, nil, nil); err != nil {
		e.t.Fatalf("%s: %v", path, err)
	}
}
