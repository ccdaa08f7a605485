package domain

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"time"

	"github.com/google/uuid"
)

// StreamIPPool is an IP address pool's stream type. Pools are platform
// resources: their streams live in the platform tenant, and the tenant of
// each VM holding an address is named in the allocation.
const StreamIPPool = "ip_pool"

// ErrPoolExhausted: the pool has no free address left. HTTP 422.
var ErrPoolExhausted = errors.New("the address pool is exhausted")

// IPPoolConfig is what a pool is created with, in canonical text forms.
type IPPoolConfig struct {
	Name        string    `json:"name"`
	ClusterID   uuid.UUID `json:"cluster_id"`
	Bridge      string    `json:"bridge"`
	VLAN        int       `json:"vlan,omitempty"` // 0: untagged
	CIDR        string    `json:"cidr"`           // IPv4 network, e.g. 10.0.0.0/24
	Gateway     string    `json:"gateway"`
	RangeStart  string    `json:"range_start"`
	RangeEnd    string    `json:"range_end"`
	Nameservers []string  `json:"nameservers"`
	// IPv6Prefix, when set, gives each VM a /128 too: the prefix with the
	// IPv4 address's host part (see IPv6For).
	IPv6Prefix string `json:"ipv6_prefix,omitempty"`
	Default    bool   `json:"default"`
}

// IP pool events, on the pool's stream.
type (
	IPPoolCreated struct {
		IPPoolConfig
	}
	// IPAddressAllocated is recorded in the same transaction as the VM's
	// create request that carries the address.
	IPAddressAllocated struct {
		VMID     uuid.UUID `json:"vm_id"`
		TenantID uuid.UUID `json:"tenant_id"`
		IPv4     string    `json:"ipv4"`
		IPv6     string    `json:"ipv6,omitempty"`
	}
	// IPAddressReleased is recorded in the same transaction as the result
	// that says Proxmox deleted the VM.
	IPAddressReleased struct {
		VMID uuid.UUID `json:"vm_id"`
		IPv4 string    `json:"ipv4"`
		IPv6 string    `json:"ipv6,omitempty"`
	}
)

func (IPPoolCreated) EventType() string      { return "ip_pool_created" }
func (IPAddressAllocated) EventType() string { return "ip_address_allocated" }
func (IPAddressReleased) EventType() string  { return "ip_address_released" }

var ipPoolEvents = []func() Event{
	func() Event { return &IPPoolCreated{} },
	func() Event { return &IPAddressAllocated{} },
	func() Event { return &IPAddressReleased{} },
}

// IPAllocation is one VM's addresses from a pool.
type IPAllocation struct {
	TenantID uuid.UUID `json:"tenant_id"`
	IPv4     string    `json:"ipv4"`
	IPv6     string    `json:"ipv6,omitempty"`
}

// IPPool is a range of addresses on one bridge of a cluster, handed out to
// VMs one each. Which addresses are taken is derived from its own events
// only, so appending an allocation at the version the pool was loaded at
// is what makes an address go to one VM.
type IPPool struct {
	ID     uuid.UUID
	Config IPPoolConfig
	// Allocations are the addresses held, by VM.
	Allocations map[uuid.UUID]IPAllocation
	CreatedAt   time.Time
	Version     int64
}

// Exists reports whether the pool has been created.
func (p *IPPool) Exists() bool { return p.Version > 0 }

// Apply mutates the pool by one recorded event.
func (p *IPPool) Apply(e Event, at time.Time) {
	switch e := e.(type) {
	case *IPPoolCreated:
		p.Config, p.CreatedAt = e.IPPoolConfig, at
	case *IPAddressAllocated:
		if p.Allocations == nil {
			p.Allocations = map[uuid.UUID]IPAllocation{}
		}
		p.Allocations[e.VMID] = IPAllocation{TenantID: e.TenantID, IPv4: e.IPv4, IPv6: e.IPv6}
	case *IPAddressReleased:
		delete(p.Allocations, e.VMID)
	}
	p.Version++
}

// Size is how many addresses the pool hands out: its range, less the
// gateway when the range holds it.
func (p *IPPool) Size() int { return rangeSize(p.Config) }

func rangeSize(c IPPoolConfig) int {
	start, err1 := netip.ParseAddr(c.RangeStart)
	end, err2 := netip.ParseAddr(c.RangeEnd)
	if err1 != nil || err2 != nil || !start.Is4() || !end.Is4() {
		return 0
	}
	n := int(v4Int(end)-v4Int(start)) + 1
	if gw, err := netip.ParseAddr(c.Gateway); err == nil && inRange(gw, start, end) {
		n--
	}
	return n
}

// Allocate gives vm (of tenant) the lowest free address of the range and,
// with an IPv6 prefix, its /128. A VM that holds an address keeps it: the
// allocation is returned again and nothing is recorded.
func (p *IPPool) Allocate(vm, tenant uuid.UUID) ([]Event, IPAllocation, error) {
	if !p.Exists() {
		return nil, IPAllocation{}, ErrNotFound
	}
	if a, ok := p.Allocations[vm]; ok {
		return nil, a, nil
	}
	start, _ := netip.ParseAddr(p.Config.RangeStart)
	end, _ := netip.ParseAddr(p.Config.RangeEnd)
	gw, _ := netip.ParseAddr(p.Config.Gateway)
	used := make(map[netip.Addr]bool, len(p.Allocations)+1)
	used[gw] = true
	for _, a := range p.Allocations {
		if ip, err := netip.ParseAddr(a.IPv4); err == nil {
			used[ip] = true
		}
	}
	for ip := start; ip.IsValid() && inRange(ip, start, end); ip = ip.Next() {
		if used[ip] {
			continue
		}
		a := IPAllocation{TenantID: tenant, IPv4: ip.String()}
		if v6, ok := IPv6For(p.Config, ip); ok {
			a.IPv6 = v6.String()
		}
		return []Event{&IPAddressAllocated{VMID: vm, TenantID: tenant, IPv4: a.IPv4, IPv6: a.IPv6}}, a, nil
	}
	return nil, IPAllocation{}, ErrPoolExhausted
}

// Release returns vm's addresses to the pool; nothing when it holds none.
func (p *IPPool) Release(vm uuid.UUID) []Event {
	a, ok := p.Allocations[vm]
	if !ok {
		return nil
	}
	return []Event{&IPAddressReleased{VMID: vm, IPv4: a.IPv4, IPv6: a.IPv6}}
}

// Network is what a VM given a of this pool is configured with.
func (p *IPPool) Network(a IPAllocation) VMNetwork {
	c := p.Config
	n := VMNetwork{PoolID: p.ID, Bridge: c.Bridge, VLAN: c.VLAN, Gateway4: c.Gateway, Nameservers: c.Nameservers}
	if prefix, err := netip.ParsePrefix(c.CIDR); err == nil {
		n.IPv4 = a.IPv4 + "/" + fmt.Sprint(prefix.Bits())
	}
	if a.IPv6 != "" {
		n.IPv6 = a.IPv6 + "/128"
		if gw, err := netip.ParseAddr(c.Gateway); err == nil {
			if gw6, ok := IPv6For(c, gw); ok {
				n.Gateway6 = gw6.String()
			}
		}
	}
	return n
}

// IPv6For is the /128 of the pool's IPv6 prefix that goes with the IPv4
// address ip: the prefix with ip's host part (10.0.0.5 in 10.0.0.0/24 and
// 2001:db8::/64 is 2001:db8::5), so the two are unique together and an
// operator reads one from the other. The gateway's is the IPv6 gateway.
func IPv6For(c IPPoolConfig, ip netip.Addr) (netip.Addr, bool) {
	if c.IPv6Prefix == "" {
		return netip.Addr{}, false
	}
	v6, err1 := netip.ParsePrefix(c.IPv6Prefix)
	v4, err2 := netip.ParsePrefix(c.CIDR)
	if err1 != nil || err2 != nil || !ip.Is4() {
		return netip.Addr{}, false
	}
	host := v4Int(ip) - v4Int(v4.Masked().Addr())
	b := v6.Masked().Addr().As16()
	for i := 15; i >= 12; i-- {
		b[i] |= byte(host)
		host >>= 8
	}
	return netip.AddrFrom16(b), true
}

func v4Int(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func inRange(ip, start, end netip.Addr) bool {
	return ip.Is4() && ip.Compare(start) >= 0 && ip.Compare(end) <= 0
}

// bridgePattern is a Linux interface name as PVE's pve-bridge-id takes it
// (IFNAMSIZ leaves 15 characters).
var bridgePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,14}$`)
