package domain_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
)

func poolInput(mod func(*domain.IPPoolInput)) domain.IPPoolInput {
	in := domain.IPPoolInput{Name: "lan", ClusterID: uuid.New(), Bridge: "vmbr0", CIDR: "10.0.0.0/29", Gateway: "10.0.0.1",
		RangeStart: "10.0.0.1", RangeEnd: "10.0.0.4", Nameservers: []string{"10.0.0.53"}, IPv6Prefix: "2001:db8::/64"}
	if mod != nil {
		mod(&in)
	}
	return in
}

func newPool(t *testing.T, in domain.IPPoolInput) *domain.IPPool {
	t.Helper()
	cfg, err := domain.NewIPPoolConfig(in)
	if err != nil {
		t.Fatal(err)
	}
	p := &domain.IPPool{ID: uuid.New()}
	p.Apply(&domain.IPPoolCreated{IPPoolConfig: cfg}, time.Now())
	return p
}

func TestIPPoolValidation(t *testing.T) {
	vlan := func(n int) *int { return &n }
	for _, c := range []struct {
		name  string
		mod   func(*domain.IPPoolInput)
		field string
	}{
		{"cidr not IPv4", func(in *domain.IPPoolInput) { in.CIDR = "2001:db8::/64" }, "cidr"},
		{"cidr host bits", func(in *domain.IPPoolInput) { in.CIDR = "10.0.0.3/29" }, "cidr"},
		{"cidr too small", func(in *domain.IPPoolInput) { in.CIDR = "10.0.0.0/31" }, "cidr"},
		{"gateway outside", func(in *domain.IPPoolInput) { in.Gateway = "10.0.1.1" }, "gateway"},
		{"gateway is the broadcast address", func(in *domain.IPPoolInput) { in.Gateway = "10.0.0.7" }, "gateway"},
		{"range start is the network address", func(in *domain.IPPoolInput) { in.RangeStart = "10.0.0.0" }, "range_start"},
		{"range end outside", func(in *domain.IPPoolInput) { in.RangeEnd = "10.0.0.9" }, "range_end"},
		{"range backwards", func(in *domain.IPPoolInput) { in.RangeStart, in.RangeEnd = "10.0.0.4", "10.0.0.2" }, "range_end"},
		{"only the gateway", func(in *domain.IPPoolInput) { in.RangeStart, in.RangeEnd = "10.0.0.1", "10.0.0.1" }, "range_end"},
		{"vlan 0", func(in *domain.IPPoolInput) { in.VLAN = vlan(0) }, "vlan"},
		{"vlan 4095", func(in *domain.IPPoolInput) { in.VLAN = vlan(4095) }, "vlan"},
		{"bridge", func(in *domain.IPPoolInput) { in.Bridge = "vmbr0,tag=5" }, "bridge"},
		{"nameserver", func(in *domain.IPPoolInput) { in.Nameservers = []string{"10.0.0.53", "x"} }, "nameservers[1]"},
		{"four nameservers", func(in *domain.IPPoolInput) { in.Nameservers = []string{"1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"} }, "nameservers"},
		{"ipv6 prefix not a prefix", func(in *domain.IPPoolInput) { in.IPv6Prefix = "10.1.0.0/16" }, "ipv6_prefix"},
		{"ipv6 prefix too narrow", func(in *domain.IPPoolInput) { in.IPv6Prefix = "2001:db8::/126" }, "ipv6_prefix"},
		{"name", func(in *domain.IPPoolInput) { in.Name = " " }, "name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := domain.NewIPPoolConfig(poolInput(c.mod))
			var ve *domain.ValidationError
			if !errors.As(err, &ve) || ve.Fields[c.field] == "" {
				t.Fatalf("err %v, want one naming %s", err, c.field)
			}
		})
	}
	cfg, err := domain.NewIPPoolConfig(poolInput(func(in *domain.IPPoolInput) { in.VLAN = vlan(4094); in.IPv6Prefix = "2001:db8::/125" }))
	if err != nil || cfg.VLAN != 4094 || cfg.IPv6Prefix != "2001:db8::/125" {
		t.Fatalf("valid pool: %+v %v", cfg, err)
	}
}

// Allocation takes the lowest free address, never the gateway, keeps a
// VM's address for it, and a released address is taken again.
func TestIPPoolAllocation(t *testing.T) {
	p := newPool(t, poolInput(nil))
	if p.Size() != 3 {
		t.Fatalf("size %d, want 3 (range .1-.4 less the gateway)", p.Size())
	}
	tenant := uuid.New()
	vms := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	for i, want := range []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"} {
		evs, a, err := p.Allocate(vms[i], tenant)
		if err != nil || len(evs) != 1 || a.IPv4 != want {
			t.Fatalf("allocation %d: %v %+v %v", i, evs, a, err)
		}
		p.Apply(evs[0], time.Now())
	}
	if evs, a, err := p.Allocate(vms[1], tenant); err != nil || evs != nil || a.IPv4 != "10.0.0.3" || a.IPv6 != "2001:db8::3" {
		t.Fatalf("a VM asking again: %v %+v %v", evs, a, err)
	}
	if _, _, err := p.Allocate(uuid.New(), tenant); !errors.Is(err, domain.ErrPoolExhausted) {
		t.Fatalf("full pool: %v", err)
	}
	rel := p.Release(vms[0])
	if len(rel) != 1 || p.Release(uuid.New()) != nil {
		t.Fatalf("release: %v", rel)
	}
	p.Apply(rel[0], time.Now())
	evs, a, err := p.Allocate(uuid.New(), tenant)
	if err != nil || a.IPv4 != "10.0.0.2" || len(evs) != 1 {
		t.Fatalf("after release: %+v %v", a, err)
	}
	n := p.Network(a)
	if n.IPConfig() != "ip=10.0.0.2/29,gw=10.0.0.1,ip6=2001:db8::2/128,gw6=2001:db8::1" || n.PoolID != p.ID {
		t.Fatalf("network %+v: %s", n, n.IPConfig())
	}
}

func TestClusterPoolRules(t *testing.T) {
	c := &domain.Cluster{ID: uuid.New()}
	c.Apply(&domain.ClusterRegistered{Name: "pve"}, time.Now())
	add := func(mod func(*domain.IPPoolInput)) error {
		in := poolInput(mod)
		in.ClusterID = c.ID
		pool, cl, err := domain.CreateIPPool(c, uuid.New(), in)
		if err == nil {
			if len(pool) != 1 || len(cl) != 1 {
				t.Fatalf("events %v %v", pool, cl)
			}
			c.Apply(cl[0], time.Now())
		}
		return err
	}
	if err := add(func(in *domain.IPPoolInput) { in.Default = true }); err != nil {
		t.Fatal(err)
	}
	var ve *domain.ValidationError
	if err := add(func(in *domain.IPPoolInput) { in.CIDR, in.IPv6Prefix = "10.0.0.0/16", "" }); !errors.As(err, &ve) || ve.Fields["cidr"] == "" {
		t.Fatalf("overlap on the bridge: %v", err)
	}
	if err := add(func(in *domain.IPPoolInput) {
		in.CIDR, in.Gateway, in.RangeStart, in.RangeEnd = "10.1.0.0/29", "10.1.0.1", "10.1.0.2", "10.1.0.4"
	}); !errors.As(err, &ve) || ve.Fields["ipv6_prefix"] == "" {
		t.Fatalf("IPv6 overlap on the bridge: %v", err)
	}
	if err := add(func(in *domain.IPPoolInput) { in.Bridge = "vmbr1" }); err != nil {
		t.Fatalf("same networks on another bridge: %v", err)
	}
	if err := add(func(in *domain.IPPoolInput) { in.Bridge, in.Default = "vmbr2", true }); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("second default: %v", err)
	}
	if _, _, err := domain.CreateIPPool(&domain.Cluster{}, uuid.New(), poolInput(nil)); !errors.As(err, &ve) || ve.Fields["cluster_id"] == "" {
		t.Fatalf("unknown cluster: %v", err)
	}
	if len(c.Pools) != 2 || c.DefaultPool != c.Pools[0].ID {
		t.Fatalf("cluster pools %+v default %s", c.Pools, c.DefaultPool)
	}
}

func TestProxmoxNetworkSyntax(t *testing.T) {
	n := domain.VMNetwork{Bridge: "vmbr1", VLAN: 30, IPv4: "192.0.2.10/24", Gateway4: "192.0.2.1"}
	if got := n.IPConfig(); got != "ip=192.0.2.10/24,gw=192.0.2.1" {
		t.Fatalf("ipconfig0 %q", got)
	}
	if got := n.QEMUNet("virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1,tag=5"); got != "virtio=BC:24:11:00:00:01,firewall=1,bridge=vmbr1,tag=30" {
		t.Fatalf("net0 %q", got)
	}
	n.IPv6, n.Gateway6, n.VLAN = "2001:db8::a/128", "2001:db8::1", 0
	if got := n.LXCNet("eth0", "BC:24:11:00:00:02"); got != "name=eth0,bridge=vmbr1,hwaddr=BC:24:11:00:00:02,ip=192.0.2.10/24,gw=192.0.2.1,ip6=2001:db8::a/128,gw6=2001:db8::1" {
		t.Fatalf("lxc net0 %q", got)
	}
}

func TestGuestAddresses(t *testing.T) {
	got := domain.GlobalAddresses([]string{"127.0.0.1/8", "::1", "fe80::1/64", "10.0.0.9/24", "", "garbage", "2001:db8::9/64", "10.0.0.9", "ff02::1", "0.0.0.0"})
	if len(got) != 2 || got[0] != "10.0.0.9" || got[1] != "2001:db8::9" {
		t.Fatalf("global addresses %v", got)
	}
	v := &domain.VM{ID: uuid.New()}
	n := &domain.VMNetwork{IPv4: "10.0.0.2/24", IPv6: "2001:db8::2/128"}
	v.Apply(&domain.VMCreateRequested{Name: "a", Network: n}, time.Now())
	if v.HeldIPv4() != 1 {
		t.Fatal("a VM with a pool address holds one")
	}
	evs := v.ReportGuestAddresses([]string{"10.0.0.2/24", "fe80::5/64", "192.168.1.5/24"})
	if len(evs) != 1 {
		t.Fatalf("report: %v", evs)
	}
	v.Apply(evs[0], time.Now())
	if again := v.ReportGuestAddresses([]string{"192.168.1.5", "10.0.0.2"}); again != nil {
		t.Fatalf("the same addresses again recorded %v", again)
	}
	want := []domain.IPAddress{{Address: "10.0.0.2", Family: 4, Source: "pool"}, {Address: "2001:db8::2", Family: 6, Source: "pool"},
		{Address: "192.168.1.5", Family: 4, Source: "guest"}}
	if got := v.IPAddresses(); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("ip addresses %+v", got)
	}
	v.Apply(&domain.VMDriftDetected{Expected: domain.VMRunning, Observed: domain.VMDeleted}, time.Now())
	if v.HeldIPv4() != 0 || len(v.IPAddresses()) != 0 || v.ReportGuestAddresses([]string{"10.0.0.3"}) != nil {
		t.Fatal("a deleted VM still holds or shows addresses")
	}
}

// A pool's snapshot (its JSON) restores to the same pool, allocations
// keyed by VM included, so loads from a snapshot allocate alike.
func TestIPPoolSnapshotRoundTrip(t *testing.T) {
	p := newPool(t, poolInput(nil))
	evs, _, _ := p.Allocate(uuid.New(), uuid.New())
	p.Apply(evs[0], time.Now())
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	back := &domain.IPPool{ID: p.ID}
	if err := json.Unmarshal(data, back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Allocations, p.Allocations) || back.Config.CIDR != p.Config.CIDR || back.Version != p.Version {
		t.Fatalf("restored %+v, want %+v", back, p)
	}
	_, a1, _ := p.Allocate(uuid.Nil, uuid.Nil)
	_, a2, _ := back.Allocate(uuid.Nil, uuid.Nil)
	if a1 != a2 {
		t.Fatalf("the restored pool allocates %+v, the original %+v", a2, a1)
	}
}
