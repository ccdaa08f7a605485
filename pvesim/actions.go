package pvesim

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// postStatusAction implements POST .../status/{action}. Which checks run
// synchronously (500 from the API call) and which fail inside the worker
// follows qemu-server and pve-container: e.g. starting a running VM
// answers a UPID whose task fails with "VM 100 already running", while
// starting a running container is refused at once.
func (s *Simulator) postStatusAction(c *call) (any, error) {
	action := c.r.PathValue("action")
	v := newValidator(c.p)
	skip, _ := v.boolean("skiplock")
	force, _ := v.boolean("forceStop")
	todisk, _ := v.boolean("todisk")
	if err := v.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	running := g.state != StatusStopped
	label := fmt.Sprintf("%s %d", c.kind.label(), g.vmid)
	lockOK := func() error { return checkLock(g, skip) }
	var commit func(t *task) error

	switch action {
	case "start":
		if c.kind == kindLXC && running {
			return nil, errf("%s already running", label)
		}
		lockOK = func() error {
			if l := g.lock(); l == "suspended" && g.busy == "" {
				return nil
			}
			return checkLock(g, skip)
		}
		commit = func(t *task) error {
			if g.isTemplate() {
				return fmt.Errorf("you can't start a vm if it's a template")
			}
			if g.state != StatusStopped {
				return fmt.Errorf("%s already running", label)
			}
			return s.powerOn(g, t)
		}
	case "stop":
		if c.kind == kindLXC && !running {
			return nil, errf("%s not running", label)
		}
		commit = func(t *task) error {
			s.setState(g, StatusStopped)
			if g.lock() == "suspended" {
				delete(g.conf, "lock")
			}
			return nil
		}
	case "shutdown":
		if c.kind == kindLXC && !running {
			return nil, errf("%s not running", label)
		}
		if g.state == StatusPaused && !force {
			return nil, errf("VM is paused - cannot shutdown")
		}
		commit = func(t *task) error {
			s.setState(g, StatusStopped)
			return nil
		}
	case "reboot":
		if !running {
			return nil, errf("%s not running", label)
		}
		if g.state == StatusPaused {
			return nil, errf("VM is paused - cannot shutdown")
		}
		commit = func(t *task) error {
			if g.state == StatusStopped {
				return fmt.Errorf("%s not running", label)
			}
			// An API reboot is a shutdown and a start: the drive is
			// regenerated and the guest boots from it.
			g.generateCloudInit()
			s.bootGuest(g)
			return nil
		}
	case "reset":
		if c.kind == kindLXC {
			return nil, unknownMethod(c.r.Method, strings.TrimPrefix(c.r.URL.Path, apiPrefix))
		}
		if !running {
			return nil, errf("%s not running", label)
		}
		commit = func(t *task) error {
			s.bootGuest(g) // a reset re-reads the drive as it is
			return nil
		}
	case "suspend":
		if c.kind == kindLXC && !running {
			return nil, errf("%s not running", label)
		}
		commit = func(t *task) error {
			if g.state != StatusRunning {
				return fmt.Errorf("%s not running", label)
			}
			if todisk && c.kind == kindQemu {
				s.setState(g, StatusStopped)
				g.conf["lock"] = "suspended"
				return nil
			}
			s.setState(g, StatusPaused)
			return nil
		}
	case "resume":
		if !running && g.lock() != "suspended" {
			return nil, errf("%s not running", label)
		}
		lockOK = func() error {
			if g.busy != "" {
				return fmt.Errorf("%s", errLockTimeout(g.kind, g.vmid))
			}
			return nil
		}
		commit = func(t *task) error {
			if g.lock() == "suspended" {
				return s.powerOn(g, t)
			}
			s.setState(g, StatusRunning)
			return nil
		}
	default:
		return nil, unknownMethod(c.r.Method, strings.TrimPrefix(c.r.URL.Path, apiPrefix))
	}
	t := s.startTask(taskSpec{
		node: g.node, typ: c.kind.taskPrefix() + action, id: strconv.Itoa(g.vmid), user: c.user,
		weight: weightOf(action), guest: g, prepare: lockOK,
		commit: func(t *task) error {
			if s.guests[g.vmid] != g {
				return errConfigMissing(g.node, g.kind, g.vmid)
			}
			return commit(t)
		},
	})
	return t.upid, nil
}

func (s *Simulator) deleteGuest(c *call) (any, error) {
	v := newValidator(c.p)
	skip, _ := v.boolean("skiplock")
	v.boolean("purge")
	v.boolean("destroy-unreferenced-disks")
	force, _ := v.boolean("force")
	if err := v.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	if g.conf["protection"] == "1" {
		return nil, errf("can't remove %s %d - protection mode enabled", c.kind.label(), g.vmid)
	}
	if g.state != StatusStopped {
		if c.kind == kindQemu {
			return nil, errf("VM %d is running - destroy failed", g.vmid)
		}
		if !force {
			return nil, errf("CT %d is running - destroy failed", g.vmid)
		}
	}
	t := s.startTask(taskSpec{
		node: g.node, typ: c.kind.taskPrefix() + "destroy", id: strconv.Itoa(g.vmid), user: c.user,
		weight: weightOf("destroy"), guest: g,
		prepare: func() error { return checkLock(g, skip) },
		commit: func(t *task) error {
			if s.guests[g.vmid] != g {
				return errConfigMissing(g.node, g.kind, g.vmid)
			}
			for _, k := range g.diskKeys() {
				t.log = append(t.log, fmt.Sprintf("  Logical volume \"pve/%s\" successfully removed.", volName(g.conf[k])))
			}
			s.removeGuest(g)
			return nil
		},
	})
	return t.upid, nil
}

var resizeRe = regexp.MustCompile(`^(\+)?(\d+(?:\.\d+)?)([KMGT])?$`)

func (s *Simulator) resizeDisk(c *call) (any, error) {
	v := newValidator(c.p)
	v.required("disk")
	v.required("size")
	skip, _ := v.boolean("skiplock")
	m := resizeRe.FindStringSubmatch(c.p["size"])
	if c.p["size"] != "" && m == nil {
		v.fail("size", "value does not match the regex pattern")
	}
	disk := c.p["disk"]
	if disk != "" && !isDiskKeyFor(c.kind, disk) {
		v.fail("disk", fmt.Sprintf("value '%s' does not have a value in the enumeration", disk))
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	if err := checkLock(g, skip); err != nil {
		return nil, errf("%s", err.Error())
	}
	spec, ok := g.conf[disk]
	if !ok || !g.isDiskKey(disk) {
		return nil, errf("disk '%s' does not exist", disk)
	}
	if g.isTemplate() {
		return nil, errf("you can't resize a template")
	}
	cur := diskSize(spec)
	f, _ := strconv.ParseFloat(m[2], 64)
	amount := uint64(f * float64(unitMultiplier(m[3])))
	newSize := amount
	if m[1] == "+" {
		newSize = cur + amount
	}
	if newSize < cur {
		return nil, errf("shrinking disks is not supported")
	}
	t := s.startTask(taskSpec{
		node: g.node, typ: "resize", id: strconv.Itoa(g.vmid), user: c.user, weight: weightOf("resize"), guest: g,
		commit: func(t *task) error {
			if s.guests[g.vmid] != g {
				return errConfigMissing(g.node, g.kind, g.vmid)
			}
			old := g.conf[disk]
			g.conf[disk] = setDiskSize(old, newSize)
			if err := s.checkResize(s.findNode(g.node), g, volName(old), newSize-cur); err != nil {
				g.conf[disk] = old
				return err
			}
			t.log = append(t.log, fmt.Sprintf("  Size of logical volume pve/%s changed from %s to %s.", volName(old), formatSize(cur), formatSize(newSize)))
			return nil
		},
	})
	return t.upid, nil
}
