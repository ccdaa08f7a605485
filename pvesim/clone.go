package pvesim

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

var volRe = regexp.MustCompile(`^([^:,]+):(?:[^,]*/)?((?:base|vm)-\d+-disk-\d+)(,.*)?$`)

func (s *Simulator) cloneGuest(c *call) (any, error) {
	v := newValidator(c.p)
	v.required("newid")
	newid64, _ := v.integer("newid", 100, 999999999)
	full, hasFull := v.boolean("full")
	nameKey := "name"
	if c.kind == kindLXC {
		nameKey = "hostname"
	}
	v.dnsName(nameKey)
	if err := v.err(); err != nil {
		return nil, err
	}
	newid := int(newid64)

	s.mu.Lock()
	defer s.mu.Unlock()
	src, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	target := src.node
	if t := c.p["target"]; t != "" {
		if s.findNode(t) == nil {
			return nil, paramErr1("target", fmt.Sprintf("no such cluster node '%s'", t))
		}
		target = t
	}
	if err := s.checkPool(c.p["pool"]); err != nil {
		return nil, err
	}
	// Templates take a shared lock, so parallel clones of one template work;
	// a normal guest must not be mid-operation.
	if src.isTemplate() {
		if l := src.lock(); l != "" {
			return nil, errf("%s", errLocked(src.kind, l))
		}
	} else if err := checkLock(src, false); err != nil {
		return nil, errf("%s", err.Error())
	}
	if other, ok := s.guests[newid]; ok {
		return nil, errf("unable to create %s %d - %s", c.kind.label(), newid, errAlreadyExists(newid, other.node, other.kind))
	}
	base := src.conf
	if snap := c.p["snapname"]; snap != "" {
		sn := src.findSnapshot(snap)
		if sn == nil {
			return nil, errf("snapshot '%s' does not exist", snap)
		}
		base = sn.conf
	}
	linked := src.isTemplate() && !(hasFull && full)
	dst := &guest{kind: c.kind, vmid: newid, node: target, conf: s.cloneConf(src, base, newid, linked, c.p["storage"]), state: StatusStopped, pool: c.p["pool"]}
	if name := c.p[nameKey]; name != "" {
		dst.conf[nameKey] = name
	} else if c.kind == kindQemu {
		dst.conf["name"] = "Copy-of-VM-" + src.name()
	}
	if d := c.p["description"]; d != "" {
		dst.conf["description"] = d
	}
	s.regenerateMACs(dst)
	dst.conf["lock"] = "clone"
	s.setGuest(dst)
	tn := s.findNode(target)
	t := s.startTask(taskSpec{
		node: src.node, typ: c.kind.taskPrefix() + "clone", id: strconv.Itoa(src.vmid), user: c.user,
		weight: weightOf("clone"), guest: dst,
		commit: func(t *task) error {
			if s.guests[newid] != dst {
				return errConfigMissing(target, c.kind, newid)
			}
			if err := s.checkStorage(tn, dst); err != nil {
				return fmt.Errorf("clone failed: %s", err.Error())
			}
			for _, k := range dst.diskKeys() {
				t.log = append(t.log, fmt.Sprintf("create %s clone of drive %s (%s)", cloneMode(linked), k, volName(src.conf[k])))
			}
			delete(dst.conf, "lock")
			return nil
		},
		rollback: func() { s.removeGuest(dst) },
	})
	return t.upid, nil
}

func cloneMode(linked bool) string {
	if linked {
		return "linked"
	}
	return "full"
}

// cloneConf copies the source config with disks renamed for the new vmid:
// linked clones reference the template's base volume, full clones get
// their own.
func (s *Simulator) cloneConf(src *guest, base map[string]string, newid int, linked bool, storage string) map[string]string {
	conf := copyConf(base)
	for _, k := range []string{"template", "lock", "parent", "snaptime", "vmstate", "vmgenid"} {
		delete(conf, k)
	}
	if src.kind == kindQemu {
		conf["vmgenid"] = s.uuid()
		conf["smbios1"] = "uuid=" + s.uuid()
	}
	probe := &guest{kind: src.kind, conf: conf}
	idx := 0
	for _, k := range probe.diskKeys() {
		m := volRe.FindStringSubmatch(conf[k])
		if m == nil {
			continue
		}
		st := m[1]
		if storage != "" && !linked {
			st = storage
		}
		name := fmt.Sprintf("vm-%d-disk-%d", newid, idx)
		idx++
		if linked {
			conf[k] = fmt.Sprintf("%s:%s/%s%s", st, m[2], name, m[3])
		} else {
			conf[k] = fmt.Sprintf("%s:%s%s", st, name, m[3])
		}
	}
	for k, val := range conf {
		if strings.HasSuffix(val, "-cloudinit,media=cdrom") {
			conf[k] = fmt.Sprintf("local-lvm:vm-%d-cloudinit,media=cdrom", newid)
		}
	}
	return conf
}

// convertToTemplate renames disks to base volumes, like qm template.
func (s *Simulator) convertToTemplate(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	if g.state != StatusStopped {
		if c.kind == kindLXC {
			return nil, errf("you can't convert a CT to template if the CT is running")
		}
		return nil, errf("you can't convert a VM to template if VM is running")
	}
	if err := checkLock(g, false); err != nil {
		return nil, errf("%s", err.Error())
	}
	apply := func() {
		for _, k := range g.diskKeys() {
			g.conf[k] = strings.Replace(g.conf[k], fmt.Sprintf("vm-%d-disk-", g.vmid), fmt.Sprintf("base-%d-disk-", g.vmid), 1)
		}
		g.conf["template"] = "1"
	}
	if c.kind == kindLXC {
		apply()
		return nil, nil
	}
	t := s.startTask(taskSpec{
		node: g.node, typ: "qmtemplate", id: strconv.Itoa(g.vmid), user: c.user, weight: weightOf("template"), guest: g,
		commit: func(t *task) error {
			if s.guests[g.vmid] != g {
				return errConfigMissing(g.node, g.kind, g.vmid)
			}
			apply()
			return nil
		},
	})
	return t.upid, nil
}
