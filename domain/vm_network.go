package domain

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// VMNetwork is a VM's address from a pool and how its interface is set up:
// everything the agent needs to configure the guest, carried by the create
// request (the agent reads no pool).
type VMNetwork struct {
	PoolID      uuid.UUID `json:"pool_id"`
	Bridge      string    `json:"bridge"`
	VLAN        int       `json:"vlan,omitempty"`
	IPv4        string    `json:"ipv4"` // address/prefix length, e.g. 10.0.0.5/24
	Gateway4    string    `json:"gateway4"`
	IPv6        string    `json:"ipv6,omitempty"` // a /128
	Gateway6    string    `json:"gateway6,omitempty"`
	Nameservers []string  `json:"nameservers,omitempty"`
}

// VMGuestAddressesReported: the guest said which addresses it has (the
// QEMU guest agent, or the container's interfaces), loopback and
// link-local left out. It follows the VM being running, never gates it.
type VMGuestAddressesReported struct {
	Addresses []string `json:"addresses"`
}

func (VMGuestAddressesReported) EventType() string { return "vm_guest_addresses_reported" }

// IPAddress is one address of a VM as the API shows it.
type IPAddress struct {
	Address string `json:"address"`
	Family  int    `json:"family"` // 4 or 6
	Source  string `json:"source"` // "pool" or "guest"
}

// Sources of a VM's addresses.
const (
	AddressFromPool  = "pool"
	AddressFromGuest = "guest"
)

// IPAddresses are the VM's addresses: the pool's (while it holds them),
// then those only the guest reported. None once the VM is deleted.
func (v *VM) IPAddresses() []IPAddress {
	out := []IPAddress{}
	if v.Status == VMDeleted {
		return out
	}
	seen := map[string]bool{}
	add := func(s, source string) {
		a, err := netip.ParseAddr(strings.SplitN(s, "/", 2)[0])
		if err != nil || seen[a.String()] {
			return
		}
		seen[a.String()] = true
		family := 6
		if a.Is4() {
			family = 4
		}
		out = append(out, IPAddress{Address: a.String(), Family: family, Source: source})
	}
	if n := v.Network; n != nil {
		add(n.IPv4, AddressFromPool)
		if n.IPv6 != "" {
			add(n.IPv6, AddressFromPool)
		}
	}
	for _, a := range v.GuestAddresses {
		add(a, AddressFromGuest)
	}
	return out
}

// HeldIPv4 is how many pool IPv4 addresses the VM holds, as the tenant's
// max_ipv4 counts them: its address until Proxmox confirmed the deletion.
func (v *VM) HeldIPv4() int {
	if !v.Exists() || v.Status == VMDeleted || v.Network == nil || v.Network.IPv4 == "" {
		return 0
	}
	return 1
}

// ReportGuestAddresses records what the guest reported, reduced to global
// addresses (loopback, link-local, unspecified and multicast dropped),
// sorted; nothing when it is what the VM shows already or the VM is gone.
func (v *VM) ReportGuestAddresses(reported []string) []Event {
	if !v.Exists() || v.Status == VMDeleted {
		return nil
	}
	addrs := GlobalAddresses(reported)
	if slices.Equal(addrs, v.GuestAddresses) || (len(addrs) == 0 && len(v.GuestAddresses) == 0) {
		return nil
	}
	return []Event{&VMGuestAddressesReported{Addresses: addrs}}
}

// GlobalAddresses are the addresses of list (plain or with a prefix length)
// that reach beyond the host and its link, canonical, sorted, unique.
func GlobalAddresses(list []string) []string {
	out := []string{}
	for _, s := range list {
		a, err := netip.ParseAddr(strings.SplitN(strings.TrimSpace(s), "/", 2)[0])
		if err != nil || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
			a.IsMulticast() || a.IsUnspecified() || a.Zone() != "" {
			continue
		}
		out = append(out, a.Unmap().String())
	}
	slices.SortFunc(out, func(x, y string) int { return netip.MustParseAddr(x).Compare(netip.MustParseAddr(y)) })
	return slices.Compact(out)
}

// Proxmox's syntax for a VM's network, checked against PVE 8.2's schema
// (pve-qm-ipconfig, the lxc net[n] property list) by pvesim's validators.

// IPConfig is qemu's ipconfig0 for the address: "ip=10.0.0.5/24,gw=10.0.0.1"
// and, with IPv6, ",ip6=2001:db8::5/128,gw6=2001:db8::1".
func (n VMNetwork) IPConfig() string {
	parts := []string{"ip=" + n.IPv4, "gw=" + n.Gateway4}
	if n.IPv6 != "" {
		parts = append(parts, "ip6="+n.IPv6)
		if n.Gateway6 != "" {
			parts = append(parts, "gw6="+n.Gateway6)
		}
	}
	return strings.Join(parts, ",")
}

// QEMUNet is a qemu guest's net0 moved onto the pool's bridge and VLAN:
// current (the clone's "virtio=MAC,bridge=vmbr0,...") with bridge and tag
// replaced, the model, MAC and other options kept.
func (n VMNetwork) QEMUNet(current string) string {
	var parts []string
	for _, p := range strings.Split(current, ",") {
		k, _, _ := strings.Cut(p, "=")
		if p == "" || k == "bridge" || k == "tag" {
			continue
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		parts = []string{"virtio"}
	}
	parts = append(parts, "bridge="+n.Bridge)
	if n.VLAN > 0 {
		parts = append(parts, "tag="+strconv.Itoa(n.VLAN))
	}
	return strings.Join(parts, ",")
}

// LXCNet is a container's net0 with the address: name, bridge, the MAC
// (hwaddr, when the clone has one, so it is kept), VLAN tag, ip, gw and
// with IPv6 ip6, gw6.
func (n VMNetwork) LXCNet(name, hwaddr string) string {
	if name == "" {
		name = "eth0"
	}
	parts := []string{"name=" + name, "bridge=" + n.Bridge}
	if hwaddr != "" {
		parts = append(parts, "hwaddr="+hwaddr)
	}
	if n.VLAN > 0 {
		parts = append(parts, "tag="+strconv.Itoa(n.VLAN))
	}
	parts = append(parts, "ip="+n.IPv4, "gw="+n.Gateway4)
	if n.IPv6 != "" {
		parts = append(parts, "ip6="+n.IPv6)
		if n.Gateway6 != "" {
			parts = append(parts, "gw6="+n.Gateway6)
		}
	}
	return strings.Join(parts, ",")
}
