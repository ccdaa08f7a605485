package pvesim

import (
	"sort"
	"strconv"
	"strings"

	"github.com/accountdb/accountdb/pvesim/internal/pveschema"
)

// Sample values valid in Proxmox's schema, for the conformance tests.

var sampleByName = map[string]string{
	"ostemplate": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
	"newid":      "300",
	"size":       "+1G",
	"storage":    "local-lvm",
	"password":   "secret-pw",
	"username":   "root@pam",
	"parallel0":  "/dev/parport0",
	"serial0":    "socket",
	"startdate":  "now",
	"vmgenid":    "1",
}

var sampleByFormat = map[string]string{
	"pve-node": "pve1", "pve-vmid": "300", "pve-configid": "snap1", "pve-poolid": "pool1",
	"pve-storage-id": "local-lvm", "dns-name": "web-1", "pve-configid-list": "description",
	"pve-volume-id": "local:iso/x.iso", "pve-startup-order": "order=1,up=5", "pve-tag-list": "a;b",
	"mac-addr": "BC:24:11:00:00:01", "pve-vm-cpu-conf": "host", "pve-qm-watchdog": "i6300esb,action=reset",
	"pve-qm-smbios1": "uuid=5ed6e0d4-7dba-4b5c-9b3e-6a1b1d2f0a11", "pve-qm-ipconfig": "ip=10.0.0.5/24,gw=10.0.0.1",
	"pve-qm-ide": "none,media=cdrom", "pve-qm-hostpci": "0000:01:00.0", "pve-qm-cicustom": "user=local:snippets/u.yaml",
	"pve-qm-bootdisk": "scsi0", "pve-qm-boot": "order=scsi0;net0", "pve-hotplug-features": "network,disk,usb",
	"pve-cpuset": "0-3", "pve-bridge-id": "vmbr0", "address-list": "1.1.1.1 9.9.9.9",
	"pve-vmid-list": "9000", "pve-storage-id-list": "local-lvm", "pve-lxc-dev-string": "/dev/ttyUSB0",
	"pve-ipv6-config": "auto", "pve-ipv4-config": "dhcp", "pve-ct-timezone": "Europe/Vienna",
	"lxc-ip-with-ll-iface-list": "1.1.1.1", "ipv6": "fd00::1", "ipv4": "10.0.0.1", "dns-name-list": "example.com",
	"storage-pair-list": "local-lvm:local-lvm", "pve-task-status-type-list": "ok,error", "pve-realm": "pam",
	"pve-priv-list": "VM.Audit", "CIDR": "10.0.0.0/24", "urlencoded": "ssh-ed25519%20AAAA",
	"disk-size": "8G", "pve-volume-id-or-qm-path": "local-lvm:8", "pve-volume-id-or-absolute-path": "local-lvm:8",
	"pve-lxc-mp-string":   "/mnt/data",
	"pve-storage-content": "backup", "pve-storage-content-list": "backup,images", "email-or-username-list": "root@pam",
	"prune-backups": "keep-last=3", "backup-fleecing": "1", "backup-performance": "max-workers=16",
}

var sampleByPattern = map[string]string{
	`\+?\d+(\.\d+)?[KMGT]?`: "+1G",
}

// Some sub-key patterns in the data are Perl qr// strings; samples for
// those are keyed by "key" in the property string.
var sampleBySubKey = map[string]string{
	"wwn": "0x5000c50015ea71ac", "trunks": "10;20", "cpus": "0-1", "hostnodes": "0",
	"mountoptions": "noatime", "mount": "nfs", "host": "1-2", "serial": "ABC123", "model": "ABC",
	"cputype": "host", "ostype": "l26", "vendor": "ACME", "product": "X", "name": "eth0", "type": "q35",
}

func sampleValue(r *pveschema.Route, name string, p *pveschema.Param) (string, bool) {
	if v, ok := sampleByName[name]; ok {
		return v, true
	}
	return sampleFor(r, name, p)
}

// sampleFor is sampleValue without the parameter-name overrides, for
// property-string keys.
func sampleFor(r *pveschema.Route, name string, p *pveschema.Param) (string, bool) {
	if p == nil {
		return "", false
	}
	if len(p.Enum) > 0 {
		return p.Enum[0], true
	}
	switch p.Type {
	case "boolean":
		return "0", true
	case "integer", "number":
		n := 1.0
		if p.Minimum != nil {
			n = *p.Minimum
		} else if p.Maximum != nil && *p.Maximum < n {
			n = *p.Maximum
		}
		return strconv.FormatFloat(n, 'f', -1, 64), true
	}
	if p.Keys != nil {
		return sampleProperty(r, p.Keys)
	}
	if p.Format != "" {
		v, ok := sampleByFormat[p.Format]
		return v, ok
	}
	if p.Pattern != "" {
		v, ok := sampleByPattern[p.Pattern]
		if !ok {
			v, ok = sampleBySubKey[name]
		}
		return v, ok
	}
	n := 1
	if p.MinLength != nil && *p.MinLength > n {
		n = *p.MinLength
	}
	return strings.Repeat("x", n), true
}

// sampleProperty builds a property string: the default key's value first,
// then every required key.
func sampleProperty(r *pveschema.Route, keys map[string]*pveschema.Param) (string, bool) {
	var parts []string
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		kp := keys[k]
		if kp.DefaultKey {
			v, ok := sampleFor(r, k, kp)
			if !ok {
				return "", false
			}
			parts = append([]string{v}, parts...)
			continue
		}
		if kp.Optional || kp.Alias != "" {
			continue
		}
		v, ok := sampleFor(r, k, kp)
		if !ok {
			return "", false
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ","), true
}
