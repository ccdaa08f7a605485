package pveschema

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// formats are PVE's registered string formats (pve-common's JSONSchema.pm,
// qemu-server, pve-container, pve-storage), each returning the message
// its Perl validator dies with, or "". A "-list" suffix applies the base
// format to every element (split_list); "-opt" allows the empty string.
var formats = map[string]func(string) string{
	"pve-node":       matcher(`^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$`, "value does not look like a valid node name"),
	"pve-vmid":       matcher(`^[1-9][0-9]{2,8}$`, "value does not look like a valid VM ID"),
	"pve-configid":   idMatcher(`^(?i)[a-z][a-z0-9_-]+$`, "invalid configuration ID '%s'"),
	"pve-poolid":     idMatcher(`^[A-Za-z0-9_\-]+$`, "invalid pool ID '%s'"),
	"pve-storage-id": checkStorageID,
	"pve-realm":      idMatcher(`^(?i)[a-z][a-z0-9\-_.]*[a-z0-9]$`, "realm ID '%s' contains illegal characters"),
	"pve-bridge-id":  idMatcher(`^[-_.\w\d]+$`, "invalid bridge ID '%s'"),
	"dns-name":       checkDNSName,
	"mac-addr":       matcher(`^(?i)[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$`, "value does not look like a valid unicast MAC address"),
	"urlencoded": func(s string) string {
		if !urlencodedRe.MatchString(s) {
			return "invalid urlencoded string: " + s
		}
		return ""
	},
	"pve-volume-id": checkVolumeID,
	"pve-volume-id-or-qm-path": func(s string) string {
		if s == "none" || s == "cdrom" || strings.HasPrefix(s, "/") {
			return ""
		}
		return checkVolumeID(s)
	},
	"pve-volume-id-or-absolute-path": func(s string) string {
		if strings.HasPrefix(s, "/") {
			return ""
		}
		return checkVolumeID(s)
	},
	"pve-startup-order": func(s string) string {
		if s == "" {
			return "unable to parse startup options"
		}
		for _, p := range strings.Split(s, ",") {
			if strings.TrimSpace(p) != "" && !startupRe.MatchString(p) {
				return "unable to parse startup options"
			}
		}
		return ""
	},
	"pve-tag": idMatcher(`^(?i)[a-z0-9_][a-z0-9_\-+.]*$`, "invalid characters in tag"),
	"pve-tag-list": func(s string) string {
		for _, t := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' || r == ' ' }) {
			if !tagRe.MatchString(t) {
				return "invalid characters in tag"
			}
		}
		return ""
	},
	"pve-cpuset":      idMatcher(`^\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*$`, "value '%s' is not a valid CPU set"),
	"pve-qm-bootdisk": idMatcher(`^(ide|sata|scsi|virtio|efidisk|tpmstate)\d+$`, "invalid boot disk '%s'"),
	"pve-qm-bootdev":  idMatcher(`^(ide|sata|scsi|virtio|net|efidisk|tpmstate|hostpci|usb)\d+$`, "invalid drive name '%s'"),
	"pve-hotplug-features": func(s string) string {
		if s == "0" || s == "1" {
			return ""
		}
		for _, f := range strings.Split(s, ",") {
			switch f {
			case "network", "disk", "cpu", "memory", "usb", "cloudinit":
			default:
				return fmt.Sprintf("invalid hotplug feature '%s'", f)
			}
		}
		return ""
	},
	"address": func(s string) string {
		if ip(s) == "" || checkDNSName(s) == "" {
			return ""
		}
		return "value does not look like a valid address: " + s
	},
	"ip": func(s string) string {
		return ifElse(ip(s) == "", "", "value does not look like a valid IP address")
	},
	"ipv4": func(s string) string {
		a, err := netip.ParseAddr(s)
		return ifElse(err == nil && a.Is4(), "", "value does not look like a valid IPv4 address")
	},
	"ipv6": func(s string) string {
		a, err := netip.ParseAddr(s)
		return ifElse(err == nil && a.Is6() && a.Zone() == "", "", "value does not look like a valid IPv6 address")
	},
	"CIDR": func(s string) string {
		return ifElse(cidr(s, 4) || cidr(s, 6), "", "value does not look like a valid CIDR network")
	},
	"pve-ipv4-config": func(s string) string {
		return ifElse(s == "dhcp" || s == "manual" || cidr(s, 4), "", "value does not look like a valid ipv4 network configuration")
	},
	"pve-ipv6-config": func(s string) string {
		return ifElse(s == "auto" || s == "dhcp" || s == "manual" || cidr(s, 6), "", "value does not look like a valid ipv6 network configuration")
	},
	"lxc-ip-with-ll-iface": func(s string) string {
		addr, iface, _ := strings.Cut(s, "%")
		if ip(addr) == "" && (iface == "" || ifaceRe.MatchString(iface)) {
			return ""
		}
		return fmt.Sprintf("invalid IP address with optional interface '%s'", s)
	},
	"disk-size": func(s string) string {
		return ifElse(diskSizeRe.MatchString(s), "", "value does not look like a valid disk size: "+s)
	},
	"pve-lxc-mp-string": func(s string) string {
		for _, seg := range strings.Split(s, "/") {
			if seg == ".." {
				return "invalid path"
			}
		}
		return ""
	},
	"pve-lxc-dev-string": func(s string) string {
		return ifElse(strings.HasPrefix(s, "/dev/") && !strings.Contains(s, "/../"), "", fmt.Sprintf("not a valid device path '%s'", s))
	},
	"pve-ct-timezone": func(s string) string {
		return ifElse(s == "host" || s == "UTC" || tzRe.MatchString(s), "", fmt.Sprintf("invalid time zone '%s'", s))
	},
	"storage-pair": func(s string) string {
		for _, id := range strings.Split(s, ":") {
			if msg := checkStorageID(id); msg != "" && s != "1" {
				return fmt.Sprintf("entry '%s' contains invalid ID - %s", s, msg)
			}
		}
		return ""
	},
	"pve-task-status-type": func(s string) string {
		return ifElse(taskStatusRe.MatchString(s), "", fmt.Sprintf("invalid status '%s'", s))
	},
	"pve-priv": idMatcher(`^[A-Za-z][A-Za-z0-9.]*$`, "invalid privilege '%s'"),
	// pve-storage's verify_content: the dir plugin's types cover all
	// others; "import" is accepted on its own.
	"pve-storage-content": func(s string) string {
		switch s {
		case "images", "rootdir", "vztmpl", "iso", "backup", "snippets", "none", "import":
			return ""
		}
		return fmt.Sprintf("invalid content type '%s'", s)
	},
	// pve-common's email-or-username (vzdump's mailto).
	"email-or-username": func(s string) string {
		return ifElse(emailRe.MatchString(s) || userIDRe.MatchString(s), "", "value does not look like a valid email address or user name")
	},
}

var (
	urlencodedRe = regexp.MustCompile(`^[-%a-zA-Z0-9_.!~*'()]*$`)
	startupRe    = regexp.MustCompile(`^(order=)?\d+$|^up=\d+$|^down=\d+$`)
	tagRe        = regexp.MustCompile(`^(?i)[a-z0-9_][a-z0-9_\-+.]*$`)
	volumeIDRe   = regexp.MustCompile(`^(?i)([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$`)
	diskSizeRe   = regexp.MustCompile(`^\d+(\.\d+)?[KMGT]?$`)
	emailRe      = regexp.MustCompile(`^[\w+\-~]+(\.[\w+\-~]+)*@[a-zA-Z0-9\-]+(\.[a-zA-Z0-9\-]+)*$`)
	userIDRe     = regexp.MustCompile(`^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+[A-Za-z0-9]$`)
	tzRe         = regexp.MustCompile(`^[A-Z][A-Za-z_+\-]*(/[A-Za-z0-9_+\-]+){1,2}$`)
)

func checkVolumeID(s string) string {
	if !volumeIDRe.MatchString(s) {
		return fmt.Sprintf("unable to parse volume ID '%s'", s)
	}
	return ""
}

var (
	checkDNSName   = matcher(`^(([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)\.)*([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$`, "value does not look like a valid DNS name")
	checkStorageID = idMatcher(`^(?i)[a-z][a-z0-9\-_.]*[a-z0-9]$`, "storage ID '%s' contains illegal characters")
	ifaceRe        = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
	taskStatusRe   = regexp.MustCompile(`^(?i)(ok|error|warning|unknown)$`)
)

func ip(s string) string {
	if _, err := netip.ParseAddr(s); err != nil {
		return "invalid"
	}
	return ""
}

func cidr(s string, family int) bool {
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Zone() != "" {
		return false
	}
	if family == 4 {
		return p.Addr().Is4() && p.Bits() > 7
	}
	return p.Addr().Is6() && !p.Addr().Is4In6() && p.Bits() > 7
}

func matcher(pattern, msg string) func(string) string {
	re := regexp.MustCompile(pattern)
	return func(s string) string { return ifElse(re.MatchString(s), "", msg) }
}

// idMatcher's message takes the value (%s), as PVE's do for ids.
func idMatcher(pattern, msgf string) func(string) string {
	re := regexp.MustCompile(pattern)
	return func(s string) string {
		if re.MatchString(s) {
			return ""
		}
		if strings.Contains(msgf, "%s") {
			return fmt.Sprintf(msgf, s)
		}
		return msgf
	}
}

func ifElse(cond bool, a, b string) string {
	if cond {
		return a
	}
	return b
}

// namedKeys returns the key schema of PVE's registered hash formats that
// the API viewer data names without spelling out. Their keys come from
// qemu-server 8.2 (PVE::QemuServer, ::Cloudinit, ::CPUConfig, ::PCI);
// "pve-qm-ide" is the same drive format as the route's own ide[n].
func (r *Route) namedKeys(name string) map[string]*Param {
	if name == "pve-qm-ide" {
		if p := r.Params["ide[n]"]; p != nil {
			return p.Keys
		}
	}
	return namedHashFormats[name]
}

func opt(typ string) *Param { return &Param{Type: typ, Optional: true} }

func optFormat(format string) *Param { return &Param{Type: "string", Optional: true, Format: format} }

func optEnum(values ...string) *Param { return &Param{Type: "string", Optional: true, Enum: values} }

func optPattern(pattern string) *Param {
	return &Param{Type: "string", Optional: true, Pattern: pattern}
}

func defaultKey(p *Param) *Param { p.DefaultKey = true; return p }

func optInt(min, max float64) *Param {
	p := &Param{Type: "integer", Optional: true, Minimum: &min}
	if max > 0 {
		p.Maximum = &max
	}
	return p
}

var namedHashFormats = map[string]map[string]*Param{
	// pve-storage's prune-backups and pve-guest-common's vzdump formats.
	"prune-backups": {
		"keep-all": opt("boolean"), "keep-last": optInt(1, 0), "keep-hourly": optInt(1, 0), "keep-daily": optInt(1, 0),
		"keep-weekly": optInt(1, 0), "keep-monthly": optInt(1, 0), "keep-yearly": optInt(1, 0),
	},
	"backup-fleecing":    {"enabled": defaultKey(opt("boolean")), "storage": optFormat("pve-storage-id")},
	"backup-performance": {"max-workers": optInt(1, 256), "pbs-entries-max": optInt(1, 0)},
	"pve-qm-ipconfig": {
		"ip": optFormat("pve-ipv4-config"), "gw": optFormat("ipv4"),
		"ip6": optFormat("pve-ipv6-config"), "gw6": optFormat("ipv6"),
	},
	"pve-qm-cicustom": {
		"meta": optFormat("pve-volume-id"), "network": optFormat("pve-volume-id"),
		"user": optFormat("pve-volume-id"), "vendor": optFormat("pve-volume-id"),
	},
	"pve-qm-watchdog": {
		"model":  defaultKey(optEnum("i6300esb", "ib700")),
		"action": optEnum("reset", "shutdown", "poweroff", "pause", "debug", "none"),
	},
	"pve-qm-smbios1": {
		"uuid": optPattern(`[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}`), "version": opt("string"),
		"serial": opt("string"), "manufacturer": opt("string"), "product": opt("string"),
		"sku": opt("string"), "family": opt("string"), "base64": opt("boolean"),
	},
	"pve-qm-boot": {
		"legacy": defaultKey(optPattern(`[acdn]{1,4}`)),
		"order":  optFormat("pve-qm-bootdev-list"),
	},
	"pve-vm-cpu-conf": {
		"cputype":        defaultKey(optPattern(`[+-]?[a-zA-Z0-9\-_\.]+`)),
		"hidden":         opt("boolean"),
		"hv-vendor-id":   optPattern(`[a-zA-Z0-9]{1,12}`),
		"flags":          optPattern(`(?:[+-][a-zA-Z0-9\-_\.]+;?)*`),
		"phys-bits":      optPattern(`host|\d+`),
		"reported-model": opt("string"),
	},
	"pve-qm-hostpci": {
		"host":          defaultKey(optPattern(`(?:(?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\.[a-f0-9])?;?)+`)),
		"mapping":       optFormat("pve-configid"),
		"rombar":        opt("boolean"),
		"romfile":       opt("string"),
		"pcie":          opt("boolean"),
		"x-vga":         opt("boolean"),
		"legacy-igd":    opt("boolean"),
		"mdev":          opt("string"),
		"device-id":     optPattern(`0x[0-9a-fA-F]{4}`),
		"vendor-id":     optPattern(`0x[0-9a-fA-F]{4}`),
		"sub-device-id": optPattern(`0x[0-9a-fA-F]{4}`),
		"sub-vendor-id": optPattern(`0x[0-9a-fA-F]{4}`),
	},
}

// KnownFormat reports whether the validator can check a format name
// (named string format, "-list"/"-opt" of one, or a named hash format).
func (r *Route) KnownFormat(name string) bool {
	if formats[name] != nil || r.namedKeys(name) != nil {
		return true
	}
	for _, suf := range []string{"-list", "-opt"} {
		if base, ok := strings.CutSuffix(name, suf); ok && formats[base] != nil {
			return true
		}
	}
	return false
}
