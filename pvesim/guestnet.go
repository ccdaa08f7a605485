package pvesim

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// bootGuest is the guest booting: a qemu guest reads its cloud-init drive
// (as it is now; the caller regenerates it first if Proxmox does), a
// container is set up from its config by pve-container. Its guest agent
// answers once the boot delay has passed. s.mu must be held.
func (s *Simulator) bootGuest(g *guest) {
	now := s.now()
	g.startedAt = now
	g.agentReadyAt = now.Add(s.guestBootDelay())
	if g.kind == kindLXC {
		d := parseLXCSetup(g.conf)
		d.SSHKeys, d.Password = g.lxcRootKeys, g.lxcRootPassword
		g.booted = &d
		return
	}
	if g.ciDrive == nil {
		g.booted = nil // no cloud-init data: the image boots as it was built
		return
	}
	d := parseCloudInit(g.vmid, g.ciDrive)
	d.Files, _ = renderNoCloud(g.vmid, g.ciDrive)
	g.booted = &d
}

func (s *Simulator) guestBootDelay() time.Duration {
	w := s.opts.GuestBoot
	if w < 0 {
		return 0
	}
	return time.Duration(w * float64(s.opts.TimeScale))
}

// agentNetworkInterfaces is GET …/qemu/{vmid}/agent/network-get-interfaces,
// with PVE::QemuServer::Agent::agent_available's checks and wording.
func (s *Simulator) agentNetworkInterfaces(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	if _, ok := g.conf["agent"]; !ok {
		return nil, errf("No QEMU guest agent configured")
	}
	if g.state == StatusStopped {
		return nil, errf("VM %d is not running", g.vmid)
	}
	enabled := propertyList("enabled=" + g.conf["agent"])["enabled"]
	if enabled == "0" || g.state == StatusPaused || s.now().Before(g.agentReadyAt) {
		return nil, errf("QEMU guest agent is not running")
	}
	ifaces := []map[string]any{{
		"name": "lo", "hardware-address": "00:00:00:00:00:00",
		"ip-addresses": []map[string]any{
			{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8},
			{"ip-address-type": "ipv6", "ip-address": "::1", "prefix": 128},
		},
	}}
	for _, nic := range s.guestNICs(g) {
		var addrs []map[string]any
		for _, cidr := range nic.addrs {
			ip, ipnet, _ := net.ParseCIDR(cidr)
			ones, _ := ipnet.Mask.Size()
			family := "ipv6"
			if ip.To4() != nil {
				family = "ipv4"
			}
			addrs = append(addrs, map[string]any{"ip-address-type": family, "ip-address": ip.String(), "prefix": ones})
		}
		ifaces = append(ifaces, map[string]any{"name": nic.name, "hardware-address": strings.ToLower(nic.mac), "ip-addresses": addrs})
	}
	return map[string]any{"result": ifaces}, nil
}

// lxcInterfaces is GET …/lxc/{vmid}/interfaces (PVE::LXC::get_interfaces):
// null when the container is not running; per interface the last address
// of each family `ip -j a` lists, so a global IPv6 address is followed,
// and shadowed, by the link-local one, as on a real node.
func (s *Simulator) lxcInterfaces(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	if g.state == StatusStopped {
		return nil, nil
	}
	out := []map[string]string{{"name": "lo", "hwaddr": "00:00:00:00:00:00", "inet": "127.0.0.1/8", "inet6": "::1/128"}}
	for _, nic := range s.guestNICs(g) {
		m := map[string]string{"name": nic.name, "hwaddr": strings.ToLower(nic.mac)}
		for _, a := range nic.addrs {
			if strings.Contains(a, ":") {
				m["inet6"] = a
			} else {
				m["inet"] = a
			}
		}
		out = append(out, m)
	}
	return out, nil
}

type guestNIC struct {
	name, mac string
	addrs     []string // CIDRs in `ip a` order: IPv4, global IPv6, link-local IPv6
}

// guestNICs are the addresses the running guest has: what it was told at
// boot (static, or a simulated DHCP lease), plus its link-local address.
func (s *Simulator) guestNICs(g *guest) []guestNIC {
	var nics []GuestNIC
	if g.booted != nil {
		nics = g.booted.Interfaces
	} else {
		for _, k := range netKeysSorted(g.conf) {
			nics = append(nics, GuestNIC{Name: "eth" + strings.TrimPrefix(k, "net"), MAC: qemuMAC(g.conf[k]), IPv4: "dhcp"})
		}
	}
	var out []guestNIC
	for i, nic := range nics {
		n := guestNIC{name: nic.Name, mac: nic.MAC}
		switch v4 := nic.IPv4; {
		case v4 == "dhcp" || (v4 == "" && g.kind == kindQemu && i == 0):
			// cloud-init's fallback when no ipconfig is given is DHCP on the first NIC.
			n.addrs = append(n.addrs, dhcpLease(g.vmid, i))
		case v4 != "" && v4 != "manual":
			n.addrs = append(n.addrs, v4)
		}
		switch v6 := nic.IPv6; {
		case v6 == "dhcp" || v6 == "auto":
			n.addrs = append(n.addrs, "fd00:5e::"+eui64(nic.MAC)+"/64")
		case v6 != "" && v6 != "manual":
			n.addrs = append(n.addrs, v6)
		}
		if nic.MAC != "" {
			n.addrs = append(n.addrs, "fe80::"+eui64(nic.MAC)+"/64")
		}
		out = append(out, n)
	}
	return out
}

// dhcpLease is the address the simulated DHCP server hands a guest's NIC:
// stable per vmid and NIC, distinct across vmids below 65024.
func dhcpLease(vmid, nic int) string {
	return fmt.Sprintf("10.%d.%d.%d/16", 200+nic%50, (vmid/254)%256, vmid%254+1)
}

// eui64 is the interface identifier SLAAC derives from a MAC.
func eui64(mac string) string {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return "1"
	}
	b := []byte{hw[0] ^ 2, hw[1], hw[2], 0xff, 0xfe, hw[3], hw[4], hw[5]}
	var parts []string
	for i := 0; i < 8; i += 2 {
		parts = append(parts, strconv.FormatUint(uint64(b[i])<<8|uint64(b[i+1]), 16))
	}
	return strings.Join(parts, ":")
}

// parseLXCSetup is what pve-container writes into a container at start:
// hostname, resolv.conf and the interfaces of its netN keys.
func parseLXCSetup(conf map[string]string) CloudInitData {
	d := CloudInitData{Hostname: orDefault(conf["hostname"], "CT")}
	d.FQDN = d.Hostname
	d.Nameservers, d.SearchDomains = dnsOf(conf)
	if !strings.Contains(d.Hostname, ".") && len(d.SearchDomains) > 0 {
		d.FQDN = d.Hostname + "." + d.SearchDomains[0]
	}
	for _, k := range netKeysSorted(conf) {
		p := propertyList(conf[k])
		d.Interfaces = append(d.Interfaces, GuestNIC{
			Name: p["name"], MAC: p["hwaddr"], IPv4: p["ip"], Gateway4: p["gw"], IPv6: p["ip6"], Gateway6: p["gw6"], configured: true,
		})
	}
	return d
}
