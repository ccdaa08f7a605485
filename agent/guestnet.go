package agent

import (
	"strings"

	"github.com/accountdb/accountdb/domain"
)

// guestNetConfig is the network a new guest is given through Proxmox,
// config key → value, as changes to cfg (the guest's config as Proxmox
// reads it now). Without an address from a pool (n nil): for qemu the
// cloud-init ipconfig0 "ip=dhcp", for lxc nothing (the template's net0
// stays, which asks for DHCP). With one: for qemu ipconfig0
// ("ip=<cidr>,gw=<gateway>" and the IPv6 /128 with gw6) and net0 moved onto
// the pool's bridge and VLAN (model and MAC kept); for lxc net0 with name,
// bridge, MAC kept, VLAN tag, ip, gw (ip6, gw6); and the pool's
// nameservers when the guest is given none (ci nil or without any).
//
// This is the one place that chooses a guest's address; the syntax is
// domain.VMNetwork's (domain/vm_network.go), checked against Proxmox's
// schema by pvesim.
func guestNetConfig(kind string, cfg map[string]any, n *domain.VMNetwork, ci *domain.CloudInit) map[string]any {
	if n == nil {
		if kind == kindLXC || stringOf(cfg["ipconfig0"]) == "ip=dhcp" {
			return nil
		}
		return map[string]any{"ipconfig0": "ip=dhcp"}
	}
	want := map[string]string{}
	if kind == kindLXC {
		cur := stringOf(cfg["net0"])
		props := propertyList(cur)
		net0 := n.LXCNet(props["name"], props["hwaddr"])
		// The NIC's other options (type, firewall, mtu, rate…) stay.
		for _, part := range strings.Split(cur, ",") {
			k, _, _ := strings.Cut(part, "=")
			if part != "" && !lxcNetKeys[k] {
				net0 += "," + part
			}
		}
		want["net0"] = net0
	} else {
		want["ipconfig0"] = n.IPConfig()
		want["net0"] = n.QEMUNet(stringOf(cfg["net0"]))
	}
	if (ci == nil || len(ci.Nameservers) == 0) && len(n.Nameservers) > 0 {
		want["nameserver"] = strings.Join(n.Nameservers, " ")
	}
	set := map[string]any{}
	for k, v := range want {
		if stringOf(cfg[k]) != v {
			set[k] = v
		}
	}
	return set
}

// lxcNetKeys are the keys of a container's net0 that domain.VMNetwork.LXCNet
// writes.
var lxcNetKeys = map[string]bool{"name": true, "bridge": true, "hwaddr": true, "tag": true, "ip": true, "gw": true, "ip6": true, "gw6": true}

// propertyList reads a PVE property string "k=v,k=v" (a qemu NIC's first
// item is "model=MAC").
func propertyList(s string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(part, "="); ok {
			out[k] = v
		}
	}
	return out
}
