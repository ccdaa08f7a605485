package pvesim

import (
	"maps"
	"slices"
	"strings"
)

// CloudInitInfo is a guest's cloud-init state, for tests that must prove
// cloud-init was applied: Booted is what the guest itself saw.
type CloudInitInfo struct {
	// DriveKey is the config key of the qemu cloud-init drive ("ide2"), "" if none.
	DriveKey string
	// Drive is what the drive holds now; nil if it was never generated
	// (a clone's drive is empty until the VM starts or PUT …/cloudinit).
	Drive *CloudInitData
	// Booted is what the guest learnt at its last boot: from the drive
	// (qemu) or from pve-container's setup (lxc). nil if it has not booted
	// since it was created, or booted without cloud-init data.
	Booted *CloudInitData
	// Pending lists the keys of the config's [special:cloudinit] section:
	// cloud-init keys changed on the running VM since the drive was made.
	Pending []string
	// Stale reports that the drive differs from what the current config
	// would generate (whether or not Proxmox recorded it as pending).
	Stale bool
}

// CloudInit returns the cloud-init state of one guest.
func (s *Simulator) CloudInit(vmid int) (CloudInitInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.guests[vmid]
	if !ok {
		return CloudInitInfo{}, false
	}
	info := CloudInitInfo{DriveKey: g.cloudInitDrive(), Booted: cloneData(g.booted)}
	if g.ciDrive != nil {
		d := parseCloudInit(g.vmid, g.ciDrive)
		d.Files, _ = renderNoCloud(g.vmid, g.ciDrive)
		info.Drive = &d
	}
	for k := range g.ciRecord {
		if k == "added" {
			info.Pending = append(info.Pending, strings.Split(g.ciRecord[k], ",")...)
		} else {
			info.Pending = append(info.Pending, k)
		}
	}
	slices.Sort(info.Pending)
	info.Stale = info.DriveKey != "" && !maps.Equal(g.ciDrive, cloudInitSnapshot(g.conf))
	return info, true
}

func cloneData(d *CloudInitData) *CloudInitData {
	if d == nil {
		return nil
	}
	c := *d
	c.SSHKeys = slices.Clone(d.SSHKeys)
	c.Nameservers = slices.Clone(d.Nameservers)
	c.SearchDomains = slices.Clone(d.SearchDomains)
	c.Interfaces = slices.Clone(d.Interfaces)
	return &c
}
