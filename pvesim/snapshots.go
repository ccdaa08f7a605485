package pvesim

import (
	"fmt"
	"strconv"
)

func (g *guest) findSnapshot(name string) *snapshot {
	for _, sn := range g.snapshots {
		if sn.name == name {
			return sn
		}
	}
	return nil
}

func (s *Simulator) listSnapshots(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for _, sn := range g.snapshots {
		m := map[string]any{"name": sn.name, "description": sn.description, "snaptime": sn.snaptime}
		if sn.parent != "" {
			m["parent"] = sn.parent
		}
		if g.kind == kindQemu {
			m["vmstate"] = boolInt(sn.vmstate)
		}
		out = append(out, m)
	}
	// PVE always lists the live state as the pseudo snapshot "current".
	cur := map[string]any{"name": "current", "description": "You are here!", "digest": g.digest()}
	if g.kind == kindQemu {
		cur["running"] = boolInt(g.state != StatusStopped)
	}
	if g.parent != "" {
		cur["parent"] = g.parent
	}
	return append(out, cur), nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *Simulator) createSnapshot(c *call) (any, error) {
	v := newValidator(c.p)
	if v.required("snapname") && !configIDRe.MatchString(c.p["snapname"]) {
		v.fail("snapname", fmt.Sprintf("invalid format - invalid configuration ID '%s'", c.p["snapname"]))
	}
	vmstate, _ := v.boolean("vmstate")
	if err := v.err(); err != nil {
		return nil, err
	}
	name := c.p["snapname"]
	if name == "current" {
		return nil, errf("unable to use snapshot name 'current' (reserved name)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	setLock := false
	t := s.startTask(taskSpec{
		node: g.node, typ: c.kind.taskPrefix() + "snapshot", id: strconv.Itoa(g.vmid), user: c.user,
		weight: weightOf("snapshot"), guest: g,
		prepare: func() error {
			if err := checkLock(g, false); err != nil {
				return err
			}
			if g.findSnapshot(name) != nil {
				return fmt.Errorf("snapshot name '%s' already used", name)
			}
			g.conf["lock"] = "snapshot"
			setLock = true
			return nil
		},
		commit: func(t *task) error {
			if s.guests[g.vmid] != g {
				return errConfigMissing(g.node, g.kind, g.vmid)
			}
			delete(g.conf, "lock")
			setLock = false
			conf := copyConf(g.conf)
			g.snapshots = append(g.snapshots, &snapshot{
				name: name, description: c.p["description"], parent: g.parent, snaptime: s.now().Unix(),
				vmstate: vmstate && g.state != StatusStopped, conf: conf, state: g.state,
			})
			g.parent = name
			return nil
		},
		rollback: func() {
			if setLock && g.lock() == "snapshot" {
				delete(g.conf, "lock")
			}
		},
	})
	return t.upid, nil
}

func (s *Simulator) snapshotIndex(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	if g.findSnapshot(c.r.PathValue("snap")) == nil {
		return nil, errf("snapshot '%s' does not exist", c.r.PathValue("snap"))
	}
	return []map[string]string{{"subdir": "rollback"}, {"subdir": "config"}}, nil
}

func (s *Simulator) getSnapshotConfig(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	sn := g.findSnapshot(c.r.PathValue("snap"))
	if sn == nil {
		return nil, errf("snapshot '%s' does not exist", c.r.PathValue("snap"))
	}
	view := &guest{kind: g.kind, vmid: g.vmid, conf: copyConf(sn.conf)}
	out := view.renderConf()
	out["snaptime"] = sn.snaptime
	out["description"] = sn.description
	if sn.parent != "" {
		out["parent"] = sn.parent
	}
	return out, nil
}

// snapshotTask starts the worker action on the existing snapshot name of
// c's guest: when it starts, the guest must not be locked and the snapshot
// must exist; while it runs the guest carries lock (as PVE's
// snapshot_rollback and snapshot_delete set "rollback" and
// "snapshot-delete"); when it ends, apply runs on the snapshot, if it still
// exists. A failed worker leaves the lock, as PVE does.
func (s *Simulator) snapshotTask(c *call, name, action, lock string, apply func(t *task, g *guest, sn *snapshot) error) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	t := s.startTask(taskSpec{
		node: g.node, typ: c.kind.taskPrefix() + action, id: strconv.Itoa(g.vmid), user: c.user,
		weight: weightOf(action), guest: g,
		prepare: func() error {
			if err := checkLock(g, false); err != nil {
				return err
			}
			if g.findSnapshot(name) == nil {
				return fmt.Errorf("snapshot '%s' does not exist", name)
			}
			g.conf["lock"] = lock
			return nil
		},
		commit: func(t *task) error {
			sn := g.findSnapshot(name)
			if sn == nil {
				return fmt.Errorf("snapshot '%s' does not exist", name)
			}
			if g.lock() == lock {
				delete(g.conf, "lock")
			}
			return apply(t, g, sn)
		},
	})
	return t.upid, nil
}

func (s *Simulator) deleteSnapshot(c *call) (any, error) {
	name := c.r.PathValue("snap")
	return s.snapshotTask(c, name, "delsnapshot", "snapshot-delete", func(_ *task, g *guest, sn *snapshot) error {
		kept := g.snapshots[:0]
		for _, o := range g.snapshots {
			if o == sn {
				continue
			}
			if o.parent == name {
				o.parent = sn.parent
			}
			kept = append(kept, o)
		}
		g.snapshots = kept
		if g.parent == name {
			g.parent = sn.parent
		}
		return nil
	})
}

func (s *Simulator) rollbackSnapshot(c *call) (any, error) {
	name := c.r.PathValue("snap")
	v := newValidator(c.p)
	start, _ := v.boolean("start")
	if err := v.err(); err != nil {
		return nil, err
	}
	return s.snapshotTask(c, name, "rollback", "rollback", func(t *task, g *guest, sn *snapshot) error {
		g.conf = copyConf(sn.conf)
		g.parent = name
		s.setState(g, StatusStopped)
		if sn.vmstate || start {
			return s.powerOn(g, t)
		}
		return nil
	})
}
