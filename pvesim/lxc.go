package pvesim

import (
	"slices"
	"strconv"

	"github.com/accountdb/accountdb/internal/shacrypt"
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
	var rootKeys []string
	if keys, ok := c.p["ssh-public-keys"]; ok {
		if err := validateSSHKeyLines(keys); err != nil {
			return nil, err
		}
		rootKeys = sshKeyLines(keys)
	}
	vmid := int(vmid64)

	s.mu.Lock()
	defer s.mu.Unlock()
	if restore, _ := strconv.ParseBool(c.p["restore"]); restore {
		return s.restoreGuest(c, kindLXC, vmid, c.p["ostemplate"], set, start)
	}
	n, err := s.createTarget(c, kindLXC, vmid)
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
	return s.createGuest(c, n, kindLXC, vmid, conf, start, func(g *guest) []string {
		// pve-container writes these into the root file system, not the config.
		g.lxcRootKeys = rootKeys
		if pw, ok := c.p["password"]; ok {
			// pve-container's set_user_password takes a crypt hash as it is
			// and hashes anything else.
			if cryptHashRe.MatchString(pw) {
				g.lxcRootPassword = pw
			} else {
				g.lxcRootPassword = shacrypt.SHA512(pw)
			}
		}
		return []string{"extracting archive '" + tmpl + "'", "Total bytes read: 524288000 (500MiB, 250MiB/s)"}
	})
}
