package pvesim

import (
	"fmt"
	"strconv"
	"strings"
)

// restoreGuest is POST /nodes/{node}/{qemu,lxc} restoring a backup (qemu:
// archive=<volid>; lxc: restore=1 with ostemplate=<volid>) into vmid: the
// backed-up configuration with overrides applied on top, its disks
// allocated anew for vmid (on ?storage= if given, else where they were),
// new MACs with unique=1. An existing guest on this node is replaced only
// with force=1, and only when it is stopped. s.mu must be held.
func (s *Simulator) restoreGuest(c *call, kind guestKind, vmid int, archive string, overrides map[string]string, start bool) (any, error) {
	emsg := fmt.Sprintf("unable to restore %s %d -", kind.label(), vmid)
	n := s.findNode(c.node)
	if n == nil {
		return nil, errNoNode(c.node)
	}
	if kind == kindQemu {
		for k := range overrides {
			if isDiskKeyFor(kind, k) {
				return nil, paramErr1(k, "option conflicts with option 'archive'")
			}
		}
	}
	if err := s.checkPool(c.p["pool"]); err != nil {
		return nil, err
	}
	b, err := s.findBackup(n.name, "", archive)
	if err != nil {
		return nil, err
	}
	if b.kind != kind {
		return nil, errf("%s archive '%s' is a %s backup", emsg, archive, b.kind)
	}
	force, _ := strconv.ParseBool(c.p["force"])
	old := s.guests[vmid]
	if old != nil && (old.node != n.name || old.kind != kind || !force) {
		return nil, errf("%s %s", emsg, errAlreadyExists(vmid, old.node, old.kind))
	}

	conf := copyConf(b.conf)
	storage := c.p["storage"]
	for _, k := range sortedKeys(conf) {
		probe := &guest{kind: kind, conf: conf}
		if !probe.isDiskKey(k) {
			continue
		}
		conf[k] = reallocSpec(conf[k], storage)
	}
	for k, v := range overrides {
		conf[k] = v
	}
	if err := s.materialize(kind, vmid, conf); err != nil {
		return nil, err
	}
	if unique, _ := strconv.ParseBool(c.p["unique"]); unique {
		s.regenerateMACs(&guest{kind: kind, conf: conf})
	}
	conf["lock"] = "create"
	g := &guest{kind: kind, vmid: vmid, node: n.name, conf: conf, state: StatusStopped, pool: c.p["pool"]}
	typ := "qmrestore"
	if kind == kindLXC {
		typ = "vzrestore"
	}
	t := s.startTask(taskSpec{
		node: n.name, typ: typ, id: strconv.Itoa(vmid), user: c.user, weight: weightOf("restore"),
		prepare: func() error {
			if old != nil {
				if old.state != StatusStopped {
					return fmt.Errorf("%s vm is running", emsg)
				}
				if old.isTemplate() {
					return fmt.Errorf("%s vm is a template", emsg)
				}
				if err := checkLock(old, false); err != nil {
					return fmt.Errorf("%s %s", emsg, err.Error())
				}
			}
			s.setGuest(g)
			return nil
		},
		commit: func(t *task) error {
			if s.guests[vmid] != g {
				return errConfigMissing(n.name, kind, vmid)
			}
			if err := s.checkStorage(n, g); err != nil {
				return fmt.Errorf("%s %s", emsg, err.Error())
			}
			t.log = append(t.log, fmt.Sprintf("restore vma archive: %s", b.path()))
			for _, k := range g.diskKeys() {
				t.log = append(t.log, fmt.Sprintf("  Logical volume \"%s\" created.", volName(g.conf[k])))
			}
			delete(g.conf, "lock")
			if start {
				return s.powerOn(g, t)
			}
			return nil
		},
		rollback: func() {
			if s.guests[vmid] == g {
				if old != nil {
					s.setGuest(old)
				} else {
					s.unsetGuest(vmid)
				}
			}
		},
	})
	return t.upid, nil
}

// reallocSpec turns a stored drive ("local-lvm:vm-100-disk-0,iothread=1,
// size=8G") into an allocation spec for a new volume of the same size and
// options ("local-lvm:8,iothread=1"), on storage if it is given.
func reallocSpec(drive, storage string) string {
	vol, opts, _ := strings.Cut(drive, ",")
	sid, _, _ := strings.Cut(vol, ":")
	if storage != "" {
		sid = storage
	}
	var kept []string
	for _, o := range strings.Split(opts, ",") {
		if o != "" && !strings.HasPrefix(o, "size=") {
			kept = append(kept, o)
		}
	}
	spec := sid + ":" + strconv.FormatFloat(float64(diskSize(drive))/(1<<30), 'f', -1, 64)
	if len(kept) > 0 {
		spec += "," + strings.Join(kept, ",")
	}
	return spec
}
