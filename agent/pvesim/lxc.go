package pvesim

import (
	"fmt"
	"slices"
	"strconv"
)

var lxcCreateExtra = setOf("vmid", "node", "pool", "storage", "start", "unique", "force", "ostemplate",
	"password", "ssh-public-keys", "restore", "ignore-unpack-errors", "bwlimit")

func (s *Simulator) createLXC(c *call) (any, error) {
	v := newValidator(c.p)
	v.required("vmid")
	vmid64, _ := v.integer("vmid", 100, 999999999)
	v.required("ostemplate")
	set := s.validateGuestConfig(kindLXC, v, lxcCreateExtra)
	start, _ := v.boolean("start")
	if pw, ok := c.p["password"]; ok && len(pw) < 5 {
		v.fail("password", "value must be at least 5 characters long")
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	vmid := int(vmid64)

	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.createTarget(c, vmid, "CT")
	if err != nil {
		return nil, err
	}
	tmpl := c.p["ostemplate"]
	if !slices.Contains(s.opts.OSTemplates, tmpl) {
		return nil, errf("volume '%s' does not exist", tmpl)
	}
	conf := map[string]string{"arch": "amd64", "ostype": "debian", "memory": "512", "swap": "512"}
	for k, val := range set {
		conf[k] = val
	}
	if _, ok := conf["rootfs"]; !ok {
		storage := c.p["storage"]
		if storage == "" {
			storage = "local-lvm"
		}
		conf["rootfs"] = storage + ":4"
	}
	if err := s.materialize(kindLXC, vmid, conf); err != nil {
		return nil, err
	}
	conf["lock"] = "create"
	g := &guest{kind: kindLXC, vmid: vmid, node: n.name, conf: conf, state: StatusStopped, pool: c.p["pool"]}
	s.guests[vmid] = g
	t := s.startTask(taskSpec{
		node: n.name, typ: "vzcreate", id: strconv.Itoa(vmid), user: c.user, weight: weightOf("create"), guest: g,
		commit: func(t *task) error {
			if s.guests[vmid] != g {
				return errConfigMissing(n.name, kindLXC, vmid)
			}
			if err := s.checkStorage(n, g); err != nil {
				return fmt.Errorf("unable to create CT %d - %s", vmid, err.Error())
			}
			t.log = append(t.log, "extracting archive '"+tmpl+"'", "Total bytes read: 524288000 (500MiB, 250MiB/s)")
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
