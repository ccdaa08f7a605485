package pvesim

import (
	"fmt"
	"strconv"
	"strings"
)

// lookupGuest resolves {node}/{kind}/{vmid} the way PVE does: a guest that
// lives elsewhere (or is of the other kind) has no config file on this node.
// Must be called with s.mu held.
func (s *Simulator) lookupGuest(c *call) (*guest, error) {
	if s.findNode(c.node) == nil {
		return nil, errNoNode(c.node)
	}
	g, ok := s.guests[c.vmid]
	if !ok || g.node != c.node || g.kind != c.kind {
		return nil, errConfigMissing(c.node, c.kind, c.vmid)
	}
	return g, nil
}

// checkLock is PVE's check_lock plus the flock a running worker holds.
func checkLock(g *guest, skiplock bool) error {
	if g.busy != "" {
		return fmt.Errorf("%s", errLockTimeout(g.kind, g.vmid))
	}
	if l := g.lock(); l != "" && !skiplock {
		return fmt.Errorf("%s", errLocked(g.kind, l))
	}
	return nil
}

func (s *Simulator) listGuests(kind guestKind) handlerFunc {
	return func(c *call) (any, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.findNode(c.node) == nil {
			return nil, errNoNode(c.node)
		}
		out := []map[string]any{}
		for _, g := range s.guestsOn(c.node) {
			if g.kind == kind {
				out = append(out, s.guestListEntry(g))
			}
		}
		return out, nil
	}
}

func (s *Simulator) guestListEntry(g *guest) map[string]any {
	m := map[string]any{
		"vmid":      g.vmid,
		"name":      g.name(),
		"status":    apiStatus(g.state),
		"cpus":      g.cores(),
		"maxmem":    g.memoryMB() << 20,
		"maxdisk":   g.diskBytes(),
		"mem":       runningMem(g),
		"cpu":       runningCPU(g),
		"disk":      0,
		"uptime":    g.uptime(s.now()),
		"netin":     0,
		"netout":    0,
		"diskread":  0,
		"diskwrite": 0,
	}
	if g.kind == kindLXC {
		m["type"] = "lxc"
		m["maxswap"] = swapMB(g) << 20
	}
	if g.isTemplate() {
		m["template"] = 1
	}
	if g.state != StatusStopped {
		m["pid"] = g.pid
	}
	if t := g.conf["tags"]; t != "" {
		m["tags"] = t
	}
	if l := g.lock(); l != "" {
		m["lock"] = l
	}
	return m
}

func swapMB(g *guest) uint64 {
	n, err := strconv.ParseUint(g.conf["swap"], 10, 64)
	if err != nil {
		return 512
	}
	return n
}

func (s *Simulator) getStatusCurrent(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	m := s.guestListEntry(g)
	m["ha"] = map[string]any{"managed": 0}
	if g.kind == kindQemu {
		m["qmpstatus"] = g.state
		m["agent"] = 0
		if g.conf["agent"] != "" && !strings.HasPrefix(g.conf["agent"], "0") {
			m["agent"] = 1
		}
		if g.state != StatusStopped {
			m["running-machine"] = "pc-i440fx-9.0+pve0"
			m["running-qemu"] = "9.0.2"
		}
	}
	return m, nil
}

func (s *Simulator) guestIndex(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.lookupGuest(c); err != nil {
		return nil, err
	}
	subs := []string{"config", "status", "snapshot", "clone", "resize", "template"}
	out := make([]map[string]string, 0, len(subs))
	for _, sub := range subs {
		out = append(out, map[string]string{"subdir": sub})
	}
	return out, nil
}

func (s *Simulator) statusIndex(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.lookupGuest(c); err != nil {
		return nil, err
	}
	out := []map[string]string{}
	for _, sub := range []string{"current", "start", "stop", "shutdown", "reboot", "suspend", "resume"} {
		out = append(out, map[string]string{"subdir": sub})
	}
	return out, nil
}

// Config keys PVE's schema types as integer or boolean come back as JSON
// numbers; everything else (including qemu "memory" since PVE 8) is a
// string. go-proxmox's decoders depend on this split.
var (
	qemuNumericKeys = setOf("cores", "sockets", "vcpus", "balloon", "cpuunits", "cpulimit", "template",
		"onboot", "numa", "protection", "acpi", "kvm", "tablet", "autostart", "ciupgrade", "shares",
		"freeze", "reboot", "localtime", "migrate_downtime", "migrate_speed")
	lxcNumericKeys = setOf("cores", "cpulimit", "cpuunits", "memory", "swap", "template", "onboot",
		"protection", "unprivileged", "console", "tty", "debug")
)

func setOf(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

func (g *guest) renderConf() map[string]any {
	numeric := qemuNumericKeys
	if g.kind == kindLXC {
		numeric = lxcNumericKeys
	}
	out := make(map[string]any, len(g.conf)+1)
	for k, v := range g.conf {
		if numeric[k] {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				out[k] = f
				continue
			}
		}
		out[k] = v
	}
	if _, ok := out["cipassword"]; ok && g.kind == kindQemu {
		out["cipassword"] = "**********" // qemu-server never returns it
	}
	out["digest"] = g.digest()
	return out
}

func (s *Simulator) getConfig(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	return g.renderConf(), nil
}

// putConfig is the synchronous config update (qemu PUT, and the only form
// lxc has).
func (s *Simulator) putConfig(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	upd, err := s.validateConfigUpdate(g, c.p)
	if err != nil {
		return nil, err
	}
	skip, _ := newValidator(c.p).boolean("skiplock")
	if err := checkLock(g, skip); err != nil {
		return nil, errf("%s", err.Error())
	}
	if err := s.applyConfigUpdate(g, upd); err != nil {
		return nil, err
	}
	return nil, nil
}

// postConfig is qemu's asynchronous config update; it answers a qmconfig
// UPID and applies the change in the worker.
func (s *Simulator) postConfig(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	upd, err := s.validateConfigUpdate(g, c.p)
	if err != nil {
		return nil, err
	}
	skip, _ := newValidator(c.p).boolean("skiplock")
	t := s.startTask(taskSpec{
		node: g.node, typ: "qmconfig", id: strconv.Itoa(g.vmid), user: c.user, weight: weightOf("config"), guest: g,
		prepare: func() error { return checkLock(g, skip) },
		commit: func(t *task) error {
			t.log = append(t.log, fmt.Sprintf("update VM %d: %s", g.vmid, describeUpdate(upd)))
			if s.guests[g.vmid] != g {
				return errConfigMissing(g.node, g.kind, g.vmid)
			}
			return s.applyConfigUpdate(g, upd)
		},
	})
	return t.upid, nil
}

// configUpdate is a validated change set.
type configUpdate struct {
	set    map[string]string
	delete []string
}

func describeUpdate(u configUpdate) string {
	var parts []string
	for _, k := range sortedKeys(u.set) {
		v := u.set[k]
		if k == "cipassword" {
			v = "<hidden>"
		}
		parts = append(parts, "-"+k+" "+v)
	}
	for _, k := range u.delete {
		parts = append(parts, "-delete "+k)
	}
	return strings.Join(parts, " ")
}

var configMetaKeys = setOf("digest", "delete", "revert", "skiplock", "background_delay", "node", "vmid")

func (s *Simulator) validateConfigUpdate(g *guest, p params) (configUpdate, error) {
	v := newValidator(p)
	set := s.validateGuestConfig(g.kind, v, configMetaKeys)
	upd := configUpdate{set: set}
	if d := p["delete"]; d != "" {
		for _, k := range strings.FieldsFunc(d, func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
			if !isConfigKey(g.kind, k) {
				v.fail("delete", fmt.Sprintf("invalid format - invalid configuration ID '%s'", k))
				continue
			}
			upd.delete = append(upd.delete, k)
		}
	}
	if err := v.err(); err != nil {
		return upd, err
	}
	if g.kind == kindQemu {
		if err := checkCloudInitParams(upd.set, true); err != nil {
			return upd, err
		}
	}
	if d := p["digest"]; d != "" && d != g.digest() {
		return upd, errf("detected modified configuration - file changed by other user? Try again.")
	}
	if len(upd.set) == 0 && len(upd.delete) == 0 && p["revert"] == "" {
		return upd, errf("no options specified")
	}
	return upd, nil
}

// applyConfigUpdate must be called with s.mu held.
func (s *Simulator) applyConfigUpdate(g *guest, upd configUpdate) error {
	conf := copyConf(g.conf)
	addsCloudInitDrive := false
	for k, v := range upd.set {
		if g.kind == kindQemu && cloudInitSpecRe.MatchString(v) {
			v = cloudInitVolume(g.vmid, v)
			addsCloudInitDrive = true
		}
		if g.isDiskKey(k) && isAllocSpec(v) {
			if _, exists := conf[k]; exists {
				return errf("unable to hotplug %s: disk already exists", k)
			}
			vol, err := allocVolume(g.kind, g.vmid, conf, v)
			if err != nil {
				return err
			}
			v = vol
		}
		conf[k] = v
	}
	for _, k := range upd.delete {
		delete(conf, k)
	}
	s.noteCloudInitChanges(g, conf)
	g.conf = conf
	if (addsCloudInitDrive && g.state == StatusStopped) || (g.state != StatusStopped && g.hotplugsCloudInit() && g.ciRecord != nil) {
		g.generateCloudInit()
	}
	return nil
}

// noteCloudInitChanges records, for a running VM, the cloud-init keys conf
// changes (qemu-server's hotplug path); a stopped VM's changes reach the
// drive at its next start anyway. A running container's NICs are
// hotplugged, so its guest sees their new addresses at once.
func (s *Simulator) noteCloudInitChanges(g *guest, conf map[string]string) {
	if g.state == StatusStopped {
		return
	}
	if g.kind == kindLXC {
		if g.booted != nil {
			g.booted.Interfaces = parseLXCSetup(conf).Interfaces
		}
		return
	}
	keys := map[string]bool{}
	for k := range conf {
		keys[k] = true
	}
	for k := range g.conf {
		keys[k] = true
	}
	for k := range keys {
		old, hadOld := g.conf[k]
		nv, hasNew := conf[k]
		if hadOld == hasNew && old == nv {
			continue
		}
		var oldP, newP *string
		if hadOld {
			oldP = &old
		}
		if hasNew {
			newP = &nv
		}
		g.recordCloudInitChange(k, oldP, newP)
	}
}
