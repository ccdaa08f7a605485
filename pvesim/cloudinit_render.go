package pvesim

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Host DNS settings a guest gets when its config sets none (qemu-server
// falls back to the node's /etc/resolv.conf).
const (
	hostNameserver   = "10.0.0.1"
	hostSearchDomain = "pve.local"
)

// NoCloudFiles are the files of a nocloud cloud-init drive.
type NoCloudFiles struct {
	UserData      string
	NetworkConfig string
	MetaData      string
}

// renderNoCloud renders the drive's files from a config snapshot the way
// qemu-server's cloudinit_userdata, nocloud_network and
// nocloud_gen_metadata do.
func renderNoCloud(vmid int, conf map[string]string) (NoCloudFiles, error) {
	d := parseCloudInit(vmid, conf)
	var u strings.Builder
	u.WriteString("#cloud-config\n")
	fmt.Fprintf(&u, "hostname: %s\nmanage_etc_hosts: true\nfqdn: %s\n", d.Hostname, d.FQDN)
	if user, ok := conf["ciuser"]; ok {
		fmt.Fprintf(&u, "user: %s\n", user)
		if user == "root" {
			u.WriteString("disable_root: False\n")
		}
	}
	if pw, ok := conf["cipassword"]; ok {
		fmt.Fprintf(&u, "password: %s\n", pw)
	}
	if _, ok := conf["sshkeys"]; ok {
		u.WriteString("ssh_authorized_keys:\n")
		for _, k := range d.SSHKeys {
			fmt.Fprintf(&u, "  - %s\n", k)
		}
	}
	u.WriteString("chpasswd:\n  expire: False\n")
	if conf["ciuser"] != "root" {
		u.WriteString("users:\n  - default\n")
	}
	if v, ok := conf["ciupgrade"]; !ok || v != "0" {
		u.WriteString("package_upgrade: true\n")
	}

	var n strings.Builder
	n.WriteString("version: 1\nconfig:\n")
	for _, nic := range d.Interfaces {
		if !nic.configured {
			continue
		}
		fmt.Fprintf(&n, "    - type: physical\n      name: %s\n      mac_address: '%s'\n      subnets:\n", nic.Name, strings.ToLower(nic.MAC))
		switch ip := nic.IPv4; {
		case ip == "dhcp":
			n.WriteString("      - type: dhcp4\n")
		case ip != "" && ip != "manual":
			addr, mask, err := splitIPv4(ip)
			if err != nil {
				return NoCloudFiles{}, err
			}
			fmt.Fprintf(&n, "      - type: static\n        address: '%s'\n        netmask: '%s'\n", addr, mask)
			if nic.Gateway4 != "" {
				fmt.Fprintf(&n, "        gateway: '%s'\n", nic.Gateway4)
			}
		}
		switch ip := nic.IPv6; {
		case ip == "dhcp":
			n.WriteString("      - type: dhcp6\n")
		case ip == "auto":
			n.WriteString("      - type: ipv6_slaac\n")
		case ip != "" && ip != "manual":
			fmt.Fprintf(&n, "      - type: static6\n        address: '%s'\n", ip)
			if nic.Gateway6 != "" {
				fmt.Fprintf(&n, "        gateway: '%s'\n", nic.Gateway6)
			}
		}
	}
	n.WriteString("    - type: nameserver\n      address:\n")
	for _, ns := range d.Nameservers {
		fmt.Fprintf(&n, "      - '%s'\n", ns)
	}
	n.WriteString("      search:\n")
	for _, sd := range d.SearchDomains {
		fmt.Fprintf(&n, "      - '%s'\n", sd)
	}
	sum := sha1.Sum([]byte(u.String() + n.String()))
	return NoCloudFiles{UserData: u.String(), NetworkConfig: n.String(), MetaData: "instance-id: " + hex.EncodeToString(sum[:]) + "\n"}, nil
}

// splitIPv4 turns "10.0.0.5/24" into the address and a dotted netmask.
func splitIPv4(cidr string) (string, string, error) {
	ip, ipnet, err := net.ParseCIDR(cidr)
	if err != nil || ip.To4() == nil {
		return "", "", errf("not a CIDR: %s", cidr)
	}
	return ip.String(), net.IP(ipnet.Mask).String(), nil
}

// CloudInitData is what a guest learns from its cloud-init drive (qemu)
// or from pve-container's setup at start (lxc).
type CloudInitData struct {
	Hostname string
	FQDN     string
	// User is ciuser; empty means the image's default user.
	User string
	// Password is cipassword as stored: a crypt hash, or clear text if it
	// was given at create (qemu-server hashes only on config updates).
	// For containers, whether a root password was set at create.
	Password      string
	SSHKeys       []string
	Nameservers   []string
	SearchDomains []string
	Interfaces    []GuestNIC
	// Files are the nocloud drive's files (qemu only).
	Files NoCloudFiles
}

// GuestNIC is one interface as configured for the guest: IPv4 and IPv6
// are a CIDR, "dhcp", "auto" (IPv6), "manual" or empty.
type GuestNIC struct {
	Name     string
	MAC      string
	IPv4     string
	Gateway4 string
	IPv6     string
	Gateway6 string
	// configured: the config has an ipconfigN for it (nocloud lists only those).
	configured bool
}

// parseCloudInit reads a qemu config snapshot into what the guest is told.
func parseCloudInit(vmid int, conf map[string]string) CloudInitData {
	d := CloudInitData{User: conf["ciuser"], Password: conf["cipassword"]}
	d.Hostname = orDefault(conf["name"], fmt.Sprintf("VM%d", vmid))
	switch search := conf["searchdomain"]; {
	case strings.Contains(d.Hostname, "."):
		d.FQDN = d.Hostname
		d.Hostname, _, _ = strings.Cut(d.Hostname, ".")
	case search != "":
		d.FQDN = d.Hostname + "." + strings.Fields(search)[0]
	default:
		d.FQDN = d.Hostname
	}
	if raw, err := url.PathUnescape(conf["sshkeys"]); err == nil {
		d.SSHKeys = sshKeyLines(raw)
	}
	d.Nameservers, d.SearchDomains = dnsOf(conf)
	for _, k := range netKeysSorted(conf) {
		id := strings.TrimPrefix(k, "net")
		nic := GuestNIC{Name: "eth" + id, MAC: qemuMAC(conf[k])}
		if ipc, ok := conf["ipconfig"+id]; ok {
			ip := propertyList(ipc)
			nic.IPv4, nic.Gateway4, nic.IPv6, nic.Gateway6 = ip["ip"], ip["gw"], ip["ip6"], ip["gw6"]
			nic.configured = true
		}
		d.Interfaces = append(d.Interfaces, nic)
	}
	return d
}

// dnsOf is get_dns_conf: the config's nameserver/searchdomain (space
// separated lists) or the host's.
func dnsOf(conf map[string]string) (nameservers, search []string) {
	nameservers, search = []string{hostNameserver}, []string{hostSearchDomain}
	if v, ok := conf["nameserver"]; ok {
		nameservers = strings.Fields(v)
	}
	if v, ok := conf["searchdomain"]; ok {
		search = strings.Fields(v)
	}
	return nameservers, search
}

// propertyList parses PVE's "k=v,k=v" property strings.
func propertyList(s string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(part, "="); ok {
			out[k] = v
		}
	}
	return out
}

// qemuMAC reads the MAC of "virtio=BC:24:11:..,bridge=vmbr0" (or macaddr=).
func qemuMAC(spec string) string {
	first, _, _ := strings.Cut(spec, ",")
	if _, mac, ok := strings.Cut(first, "="); ok && strings.Count(mac, ":") == 5 {
		return mac
	}
	return propertyList(spec)["macaddr"]
}

// netKeysSorted lists the netN keys of conf by their index.
func netKeysSorted(conf map[string]string) []string {
	var keys []string
	for k := range conf {
		if netKeyRe.MatchString(k) {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, _ := strconv.Atoi(strings.TrimPrefix(keys[i], "net"))
		b, _ := strconv.Atoi(strings.TrimPrefix(keys[j], "net"))
		return a < b
	})
	return keys
}
