package pvesim

import (
	"fmt"
	"strconv"
	"strings"
)

var qemuCreateExtra = setOf("vmid", "node", "pool", "storage", "start", "unique", "force", "archive", "live-restore", "bwlimit")

func (s *Simulator) createQemu(c *call) (any, error) {
	v := newValidator(c.p)
	v.required("vmid")
	vmid64, _ := v.integer("vmid", 100, 999999999)
	set := s.validateGuestConfig(kindQemu, v, qemuCreateExtra)
	start, _ := v.boolean("start")
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkCloudInitParams(set, false); err != nil {
		return nil, err
	}
	vmid := int(vmid64)

	s.mu.Lock()
	defer s.mu.Unlock()
	if archive, ok := c.p["archive"]; ok {
		return s.restoreGuest(c, kindQemu, vmid, archive, set, start)
	}
	n, err := s.createTarget(c, kindQemu, vmid)
	if err != nil {
		return nil, err
	}
	conf := map[string]string{
		"smbios1": "uuid=" + s.uuid(),
		"vmgenid": s.uuid(),
		"meta":    fmt.Sprintf("creation-qemu=9.0.2,ctime=%d", s.now().Unix()),
	}
	for k, val := range set {
		conf[k] = val
	}
	return s.createGuest(c, n, kindQemu, vmid, conf, start, func(g *guest) []string {
		var log []string
		for _, k := range g.diskKeys() {
			log = append(log, fmt.Sprintf("  Logical volume \"%s\" created.", volName(g.conf[k])))
		}
		return log
	})
}

// createGuest materializes conf and registers the new guest, locked until
// its create worker ends: the worker checks the node's storage, logs what
// log returns, and starts the guest if start is set; a failed worker
// removes it. s.mu must be held.
func (s *Simulator) createGuest(c *call, n *node, kind guestKind, vmid int, conf map[string]string, start bool, log func(g *guest) []string) (any, error) {
	if err := s.materialize(kind, vmid, conf); err != nil {
		return nil, err
	}
	conf["lock"] = "create"
	g := &guest{kind: kind, vmid: vmid, node: n.name, conf: conf, state: StatusStopped, pool: c.p["pool"]}
	s.setGuest(g)
	t := s.startTask(taskSpec{
		node: n.name, typ: kind.taskPrefix() + "create", id: strconv.Itoa(vmid), user: c.user, weight: weightOf("create"), guest: g,
		commit: func(t *task) error {
			if s.guests[vmid] != g {
				return errConfigMissing(n.name, kind, vmid)
			}
			if err := s.checkStorage(n, g); err != nil {
				return fmt.Errorf("unable to create %s %d - %s", kind.label(), vmid, err.Error())
			}
			t.log = append(t.log, log(g)...)
			delete(g.conf, "lock")
			if start {
				return s.powerOn(g, t)
			}
			return nil
		},
		rollback: func() { s.removeGuest(g) },
	})
	return t.upid, nil
}

// materialize allocates volumes for "storage:size" disk specs and gives
// NICs a MAC, as PVE does when it writes a new config.
func (s *Simulator) materialize(kind guestKind, vmid int, conf map[string]string) error {
	probe := &guest{kind: kind, conf: conf}
	for _, k := range sortedKeys(conf) {
		val := conf[k]
		switch {
		case probe.isDiskKey(k) && isAllocSpec(val):
			vol, err := allocVolume(kind, vmid, conf, val)
			if err != nil {
				return err
			}
			conf[k] = vol
		case kind == kindQemu && cloudInitSpecRe.MatchString(val):
			conf[k] = cloudInitVolume(vmid, val)
		case netKeyRe.MatchString(k) && kind == kindQemu:
			conf[k] = s.withQemuMAC(val)
		case strings.HasPrefix(k, "net") && kind == kindLXC && !strings.Contains(val, "hwaddr="):
			conf[k] = val + ",hwaddr=" + s.mac()
		}
	}
	return nil
}

// withQemuMAC turns "virtio,bridge=vmbr0" into "virtio=BC:24:11:..,bridge=vmbr0".
func (s *Simulator) withQemuMAC(val string) string {
	model, rest, _ := strings.Cut(val, ",")
	if strings.Contains(model, "=") {
		return val
	}
	out := model + "=" + s.mac()
	if rest != "" {
		out += "," + rest
	}
	return out
}

// regenerateMACs gives a clone fresh MAC addresses, as PVE does.
func (s *Simulator) regenerateMACs(g *guest) {
	for k, val := range g.conf {
		if !strings.HasPrefix(k, "net") {
			continue
		}
		if g.kind == kindQemu {
			model, rest, _ := strings.Cut(val, ",")
			model, _, _ = strings.Cut(model, "=")
			g.conf[k] = s.withQemuMAC(strings.TrimSuffix(model+","+rest, ","))
			continue
		}
		var parts []string
		for _, p := range strings.Split(val, ",") {
			if !strings.HasPrefix(p, "hwaddr=") {
				parts = append(parts, p)
			}
		}
		g.conf[k] = strings.Join(append(parts, "hwaddr="+s.mac()), ",")
	}
}

func (s *Simulator) mac() string {
	return fmt.Sprintf("BC:24:11:%02X:%02X:%02X", s.rng.IntN(256), s.rng.IntN(256), s.rng.IntN(256))
}

func (s *Simulator) uuid() string {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(s.rng.IntN(256))
	}
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// volName extracts "vm-100-disk-0" from "local-lvm:vm-100-disk-0,size=8G".
func volName(spec string) string {
	vol, _, _ := strings.Cut(spec, ",")
	_, name, _ := strings.Cut(vol, ":")
	return name
}

// lvmExtent is the volume group's extent size, the unit LVM counts in.
const lvmExtent = 4 << 20

// storageFree says whether g's disks fit on n and, when they do not, how
// much n had free before the request: added is what the request adds to
// g's disks (all of them for a new guest, the growth for a resize), which
// are already counted in the node's usage. A reserved node (a fault) has
// nothing free.
func (s *Simulator) storageFree(n *node, g *guest, added uint64) (free uint64, fits bool) {
	s.retally(g)
	used := s.nodeDiskUsed(n)
	if !n.reserved && used <= n.storage {
		return 0, true
	}
	if !n.reserved && n.storage > used-added {
		free = n.storage - (used - added)
	}
	return free, false
}

// checkStorage fails the way an exhausted LVM volume group fails a new
// volume: PVE's lvcreate with LVM's last line on stderr.
func (s *Simulator) checkStorage(n *node, g *guest) error {
	free, fits := s.storageFree(n, g, g.diskBytes())
	if fits {
		return nil
	}
	vol := fmt.Sprintf("vm-%d-disk-0", g.vmid)
	if keys := g.diskKeys(); len(keys) > 0 {
		vol = volName(g.conf[keys[0]])
	}
	return errf("lvcreate 'pve/%s' error:   Volume group \"pve\" has insufficient free space (%d extents): %d required.", vol, free/lvmExtent, max(g.diskBytes()/lvmExtent, 1))
}

// checkResize fails a disk grown by grownBy the way PVE's volume_resize
// does when the volume group cannot hold it: lvextend's last line on
// stderr after "error resizing volume '<path>'".
func (s *Simulator) checkResize(n *node, g *guest, vol string, grownBy uint64) error {
	free, fits := s.storageFree(n, g, grownBy)
	if fits {
		return nil
	}
	return errf("error resizing volume '/dev/pve/%s':   Insufficient free space: %d extents needed, but only %d available", vol, max(grownBy/lvmExtent, 1), free/lvmExtent)
}

// powerOn starts g if the node has memory for it; QEMU's own failure is
// what PVE reports when the host cannot back guest RAM.
func (s *Simulator) powerOn(g *guest, t *task) error {
	n := s.findNode(g.node)
	s.retally(g)
	if n == nil || n.reserved || s.nodeMemUsed(n)+(g.memoryMB()<<20) > n.memory {
		if g.kind == kindLXC {
			t.log = append(t.log, "lxc-start: cgroup memory limit could not be applied: Cannot allocate memory")
			return fmt.Errorf("startup for container '%d' failed", g.vmid)
		}
		t.log = append(t.log, "kvm: cannot set up guest memory 'pc.ram': Cannot allocate memory")
		return fmt.Errorf("start failed: QEMU exited with code 1")
	}
	resuming := g.lock() == "suspended"
	s.setState(g, StatusRunning)
	g.startedAt = s.now()
	s.taskSeq++
	g.pid = 10000 + int(s.taskSeq)
	if resuming {
		delete(g.conf, "lock")
	}
	// qemu-server regenerates the cloud-init drive at every start; a VM
	// resumed from hibernation does not boot, so its guest reads nothing.
	g.generateCloudInit()
	if !resuming {
		s.bootGuest(g)
	}
	return nil
}

func (s *Simulator) removeGuest(g *guest) {
	if s.guests[g.vmid] == g {
		s.unsetGuest(g.vmid)
	}
}

func (s *Simulator) seedTemplate(t Template) {
	nodeName := t.Node
	if nodeName == "" {
		nodeName = s.nodes[0].name
	}
	kind := guestKind(t.Kind)
	if kind != kindLXC {
		kind = kindQemu
	}
	disk := fmt.Sprintf("local-lvm:base-%d-disk-0,size=%dG", t.VMID, max(t.DiskGB, 1))
	conf := map[string]string{
		"cores":    strconv.Itoa(max(t.Cores, 1)),
		"memory":   strconv.Itoa(max(t.MemoryMB, 16)),
		"template": "1",
	}
	if kind == kindQemu {
		conf["name"] = t.Name
		conf["ostype"] = orDefault(t.OSType, "l26")
		conf["scsihw"] = "virtio-scsi-pci"
		conf["scsi0"] = disk
		conf["ide2"] = fmt.Sprintf("local-lvm:vm-%d-cloudinit,media=cdrom", t.VMID)
		conf["net0"] = "virtio=" + s.mac() + ",bridge=vmbr0"
		conf["boot"] = "order=scsi0;net0"
		conf["agent"] = "1"
		conf["smbios1"] = "uuid=" + s.uuid()
	} else {
		conf["hostname"] = t.Name
		conf["ostype"] = orDefault(t.OSType, "debian")
		conf["arch"] = "amd64"
		conf["swap"] = "512"
		conf["rootfs"] = disk
		conf["net0"] = "name=eth0,bridge=vmbr0,hwaddr=" + s.mac() + ",ip=dhcp,type=veth"
		conf["unprivileged"] = "1"
	}
	s.setGuest(&guest{kind: kind, vmid: t.VMID, node: nodeName, conf: conf, state: StatusStopped})
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return keys
}

// createTarget checks what every create needs, with s.mu held: the node
// exists, the pool (if any) exists, and the vmid is free.
func (s *Simulator) createTarget(c *call, kind guestKind, vmid int) (*node, error) {
	n := s.findNode(c.node)
	if n == nil {
		return nil, errNoNode(c.node)
	}
	if err := s.checkPool(c.p["pool"]); err != nil {
		return nil, err
	}
	if other, ok := s.guests[vmid]; ok {
		return nil, errf("unable to create %s %d - %s", kind.label(), vmid, errAlreadyExists(vmid, other.node, other.kind))
	}
	return n, nil
}
