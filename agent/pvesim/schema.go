package pvesim

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// fieldKind is the subset of PVE's JSON schema types the simulator checks.
type fieldKind int

const (
	fStr fieldKind = iota
	fInt
	fBool
	fDNS
	fTags
	fMemory
	fNumber
)

type field struct {
	kind     fieldKind
	min, max int64
	enum     []string
}

var qemuSchema = map[string]field{
	"name": {kind: fDNS}, "description": {}, "tags": {kind: fTags},
	"cores": {kind: fInt, min: 1, max: 1024}, "sockets": {kind: fInt, min: 1, max: 4},
	"vcpus": {kind: fInt, min: 1, max: 4096}, "memory": {kind: fMemory, min: 16},
	"balloon": {kind: fInt, min: 0}, "cpuunits": {kind: fInt, min: 1, max: 262144},
	"cpulimit": {kind: fNumber, min: 0, max: 128}, "shares": {kind: fInt, min: 0, max: 50000},
	"ostype": {enum: []string{"other", "wxp", "w2k", "w2k3", "w2k8", "wvista", "win7", "win8", "win10", "win11", "l24", "l26", "solaris"}},
	"bios":   {enum: []string{"seabios", "ovmf"}},
	"scsihw": {enum: []string{"lsi", "lsi53c810", "virtio-scsi-pci", "virtio-scsi-single", "megasas", "pvscsi"}},
	"citype": {enum: []string{"configdrive2", "nocloud", "opennebula"}},
	"onboot": {kind: fBool}, "template": {kind: fBool}, "numa": {kind: fBool}, "protection": {kind: fBool},
	"acpi": {kind: fBool}, "kvm": {kind: fBool}, "tablet": {kind: fBool}, "autostart": {kind: fBool},
	"ciupgrade": {kind: fBool}, "localtime": {kind: fBool}, "freeze": {kind: fBool}, "reboot": {kind: fBool},
	"cpu": {}, "boot": {}, "bootdisk": {}, "machine": {}, "vga": {}, "agent": {}, "ciuser": {}, "cipassword": {},
	"cicustom": {}, "sshkeys": {}, "nameserver": {}, "searchdomain": {}, "hookscript": {}, "args": {},
	"hotplug": {}, "smbios1": {}, "vmgenid": {}, "startup": {}, "affinity": {}, "hugepages": {},
	"keyboard": {}, "watchdog": {}, "rng0": {}, "audio0": {}, "efidisk0": {}, "tpmstate0": {}, "meta": {},
	"migrate_downtime": {kind: fNumber, min: 0}, "migrate_speed": {kind: fInt, min: 0}, "lock": {},
}

var lxcSchema = map[string]field{
	"hostname": {kind: fDNS}, "description": {}, "tags": {kind: fTags},
	"cores": {kind: fInt, min: 1, max: 8192}, "memory": {kind: fInt, min: 16}, "swap": {kind: fInt, min: 0},
	"cpulimit": {kind: fNumber, min: 0, max: 8192}, "cpuunits": {kind: fInt, min: 0, max: 500000},
	"ostype": {enum: []string{"debian", "devuan", "ubuntu", "centos", "fedora", "opensuse", "archlinux", "alpine", "gentoo", "nixos", "unmanaged"}},
	"arch":   {enum: []string{"amd64", "i386", "arm64", "armhf", "riscv32", "riscv64"}},
	"cmode":  {enum: []string{"shell", "console", "tty"}},
	"onboot": {kind: fBool}, "template": {kind: fBool}, "protection": {kind: fBool}, "unprivileged": {kind: fBool},
	"console": {kind: fBool}, "debug": {kind: fBool}, "tty": {kind: fInt, min: 0, max: 6},
	"rootfs": {}, "features": {}, "nameserver": {}, "searchdomain": {}, "startup": {}, "hookscript": {},
	"timezone": {}, "lock": {},
}

var (
	qemuIndexedRe = regexp.MustCompile(`^(ide[0-3]|sata[0-5]|scsi([0-9]|[12][0-9]|30)|virtio([0-9]|1[0-5])|net([0-9]|[12][0-9]|3[01])|unused\d+|serial[0-3]|usb[0-4]|hostpci([0-9]|1[0-5])|ipconfig([0-9]|[12][0-9]|3[01])|numa[0-7]|parallel[0-2])$`)
	lxcIndexedRe  = regexp.MustCompile(`^(net([0-9]|[12][0-9]|3[01])|mp([0-9]|[1-9][0-9]|[12][0-9][0-9])|unused\d+|dev\d+)$`)
	allocSpecRe   = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9\-_.]*):(\d+(?:\.\d+)?)(,.*)?$`)
)

func isConfigKey(kind guestKind, k string) bool {
	if kind == kindLXC {
		_, ok := lxcSchema[k]
		return ok || lxcIndexedRe.MatchString(k)
	}
	_, ok := qemuSchema[k]
	return ok || qemuIndexedRe.MatchString(k)
}

// validateGuestConfig checks every parameter against the guest schema and
// returns the config keys to set (values normalised). Keys in extra are
// endpoint parameters that are not config.
func (s *Simulator) validateGuestConfig(kind guestKind, v *validator, extra map[string]bool) map[string]string {
	schema := qemuSchema
	if kind == kindLXC {
		schema = lxcSchema
	}
	set := map[string]string{}
	for k, val := range v.p {
		if extra[k] {
			continue
		}
		f, ok := schema[k]
		if !ok {
			if !isConfigKey(kind, k) {
				v.fail(k, "property is not defined in schema and the schema does not allow additional properties")
				continue
			}
			f = field{}
		}
		if norm, ok := checkField(v, k, f); ok {
			set[k] = norm
		} else if _, failed := v.errs[k]; !failed {
			set[k] = val
		}
	}
	for k, val := range set {
		if isDiskKeyFor(kind, k) && isAllocSpec(val) {
			storage := allocSpecRe.FindStringSubmatch(val)[1]
			if storage != "local-lvm" && storage != "local" {
				v.fail(k, fmt.Sprintf("storage '%s' does not exist", storage))
			}
		}
	}
	return set
}

func isDiskKeyFor(kind guestKind, k string) bool {
	g := guest{kind: kind, conf: map[string]string{}}
	return g.isDiskKey(k)
}

func checkField(v *validator, k string, f field) (string, bool) {
	val := v.p[k]
	switch f.kind {
	case fInt:
		n, ok := v.integer(k, f.min, f.max)
		return strconv.FormatInt(n, 10), ok
	case fMemory:
		inner := strings.TrimPrefix(val, "current=")
		n, err := strconv.ParseInt(inner, 10, 64)
		if err != nil {
			v.fail(k, fmt.Sprintf("invalid format - format error\n%s.current: type check ('integer') failed - got '%s'", k, inner))
			return "", false
		}
		if n < f.min {
			v.fail(k, fmt.Sprintf("invalid format - format error\n%s.current: value must have a minimum value of %d", k, f.min))
			return "", false
		}
		return strconv.FormatInt(n, 10), true
	case fNumber:
		n, err := strconv.ParseFloat(val, 64)
		if err != nil {
			v.fail(k, fmt.Sprintf("type check ('number') failed - got '%s'", val))
			return "", false
		}
		if n < float64(f.min) || (f.max > 0 && n > float64(f.max)) {
			v.fail(k, fmt.Sprintf("value must be between %d and %d", f.min, f.max))
			return "", false
		}
		return val, true
	case fBool:
		b, ok := v.boolean(k)
		if !ok {
			return "", false
		}
		if b {
			return "1", true
		}
		return "0", true
	case fDNS:
		v.dnsName(k)
		_, failed := v.errs[k]
		return val, !failed
	case fTags:
		return v.tags(k)
	}
	if len(f.enum) > 0 {
		v.enum(k, f.enum...)
		_, failed := v.errs[k]
		return val, !failed
	}
	return val, true
}

func isAllocSpec(v string) bool { return allocSpecRe.MatchString(v) }

// allocVolume turns "local-lvm:32,opts" into PVE's stored drive string
// "local-lvm:vm-100-disk-0,opts,size=32G", picking the next free disk
// index among the volumes already referenced by conf.
func allocVolume(kind guestKind, vmid int, conf map[string]string, spec string) (string, error) {
	m := allocSpecRe.FindStringSubmatch(spec)
	if m == nil {
		return spec, nil
	}
	gb, err := strconv.ParseFloat(m[2], 64)
	if err != nil || gb <= 0 {
		return "", errf("invalid disk size '%s'", m[2])
	}
	idx := 0
	for {
		name := fmt.Sprintf("vm-%d-disk-%d", vmid, idx)
		used := false
		for _, v := range conf {
			if strings.Contains(v, name+",") || strings.HasSuffix(v, name) {
				used = true
				break
			}
		}
		if !used {
			break
		}
		idx++
	}
	opts := strings.TrimPrefix(m[3], ",")
	vol := fmt.Sprintf("%s:vm-%d-disk-%d", m[1], vmid, idx)
	if kind == kindQemu && m[1] == "local" {
		vol = fmt.Sprintf("local:%d/vm-%d-disk-%d.raw", vmid, vmid, idx)
	}
	if opts != "" {
		vol += "," + opts
	}
	return setDiskSize(vol, uint64(gb*float64(1<<30))), nil
}
