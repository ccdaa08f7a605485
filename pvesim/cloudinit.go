package pvesim

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/accountdb/accountdb/internal/shacrypt"
)

// Cloud-init follows qemu-server 8.2 (PVE/QemuServer.pm, PVE/QemuServer/
// Cloudinit.pm, PVE/API2/Qemu.pm):
//
//   - The cloud-init drive (a "vm-<vmid>-cloudinit" volume) holds files
//     generated from the config. They are generated when the VM starts
//     (every start, including the stop+start of an API reboot), when
//     PUT …/cloudinit asks for it, when a cloud-init drive is added to a
//     stopped VM, and on hotplug if the VM's hotplug list has "cloudinit".
//     A clone gets a new, empty cloud-init volume.
//   - Changing a cloud-init key of a running VM writes the config but not
//     the drive; the old value is recorded in the config's
//     [special:cloudinit] section, which GET …/cloudinit reports as
//     pending until the drive is regenerated.
//   - The guest reads the drive when it boots. A drive regenerated while
//     the guest runs is swapped in, but the guest only sees it at its next
//     boot (a reset does not regenerate, it re-reads what is there).

// cloudInitOptions are the keys GET …/cloudinit lists ($cloudinitoptions
// in PVE/API2/Qemu.pm).
var cloudInitOptions = []string{"cicustom", "cipassword", "citype", "ciupgrade", "ciuser", "nameserver", "searchdomain", "sshkeys"}

var (
	ipconfigKeyRe = regexp.MustCompile(`^ipconfig\d+$`)
	// cloudInitSpecRe is "<storage>:cloudinit", asking for a new drive.
	cloudInitSpecRe = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9\-_.]*):cloudinit(,.*)?$`)
	// cryptHashRe is qemu-server's test for an already hashed cipassword.
	cryptHashRe = regexp.MustCompile(`^\$(?:[156]|2[ay])(\$.+){2}`)
)

// isCloudInitKey is cloudinit_pending_properties: the cloud-init keys,
// the VM name (the guest's hostname) and the NICs (their MACs).
func isCloudInitKey(k string) bool {
	for _, o := range cloudInitOptions {
		if k == o {
			return true
		}
	}
	return k == "name" || ipconfigKeyRe.MatchString(k) || netKeyRe.MatchString(k)
}

// cloudInitVolume allocates the drive "<storage>:cloudinit" asks for.
func cloudInitVolume(vmid int, spec string) string {
	m := cloudInitSpecRe.FindStringSubmatch(spec)
	opts := strings.TrimPrefix(m[2], ",")
	if !strings.Contains(opts, "media=") {
		opts = strings.TrimPrefix(opts+",media=cdrom", ",")
	}
	return fmt.Sprintf("%s:vm-%d-cloudinit,%s", m[1], vmid, opts)
}

// cloudInitDrive returns the config key of g's cloud-init drive, "" if none.
func (g *guest) cloudInitDrive() string {
	if g.kind != kindQemu {
		return ""
	}
	want := fmt.Sprintf("vm-%d-cloudinit", g.vmid)
	for _, k := range sortedKeys(g.conf) {
		if qemuDiskKeyRe.MatchString(k) && strings.Contains(volName(g.conf[k]), want) {
			return k
		}
	}
	return ""
}

// generateCloudInit writes the drive from the current config and clears
// the [special:cloudinit] record, as apply_cloudinit_config does.
func (g *guest) generateCloudInit() {
	if g.cloudInitDrive() == "" {
		return
	}
	g.ciDrive = cloudInitSnapshot(g.conf)
	g.ciRecord = nil
}

// cloudInitSnapshot copies the keys the drive's files are rendered from.
func cloudInitSnapshot(conf map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range conf {
		if isCloudInitKey(k) || k == "ostype" {
			out[k] = v
		}
	}
	return out
}

// recordCloudInitChange is qemu-server's $cloudinit_record_changed: it
// keeps, per key, the value the current drive was generated with, and in
// "added" the keys that did not exist then.
func (g *guest) recordCloudInitChange(opt string, old *string, newVal *string) {
	if !isCloudInitKey(opt) {
		return
	}
	if g.ciRecord == nil {
		g.ciRecord = map[string]string{}
	}
	ci := g.ciRecord
	recorded, hasRecorded := ci[opt]
	added := map[string]bool{}
	for _, a := range strings.Split(ci["added"], ",") {
		if a != "" {
			added[a] = true
		}
	}
	delete(ci, "added")
	switch {
	case newVal != nil:
		switch {
		case hasRecorded && *newVal == recorded:
			delete(ci, opt) // reverted to what the drive holds
			delete(added, opt)
		case hasRecorded || added[opt]:
		case old != nil:
			ci[opt] = *old
		default:
			added[opt] = true
		}
	case old == nil:
	case hasRecorded:
	case added[opt]:
		delete(added, opt)
	default:
		ci[opt] = *old
	}
	if len(added) > 0 {
		keys := make([]string, 0, len(added))
		for k := range added {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		ci["added"] = strings.Join(keys, ",")
	}
	if len(ci) == 0 {
		g.ciRecord = nil
	}
}

// hotplugsCloudInit reports whether the VM's hotplug list has "cloudinit"
// (the default, network,disk,usb, does not).
func (g *guest) hotplugsCloudInit() bool {
	for _, f := range strings.Split(g.conf["hotplug"], ",") {
		if f == "cloudinit" {
			return true
		}
	}
	return false
}

// getCloudInit is GET …/qemu/{vmid}/cloudinit (cloudinit_pending).
func (s *Simulator) getCloudInit(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	mask := func(k, v string) string {
		if k == "cipassword" {
			return "**********"
		}
		return v
	}
	ci := g.ciRecord
	out := []map[string]any{}
	added := map[string]bool{}
	for _, k := range strings.Split(ci["added"], ",") {
		if k != "" {
			added[k] = true
			out = append(out, map[string]any{"key": k, "pending": mask(k, g.conf[k])})
		}
	}
	for _, opt := range cloudInitOptions {
		if g.conf[opt] == "" || added[opt] {
			continue
		}
		item := map[string]any{"key": opt}
		if old, ok := ci[opt]; ok && old != "" {
			item["value"], item["pending"] = mask(opt, old), mask(opt, g.conf[opt])
		} else {
			item["value"] = mask(opt, g.conf[opt])
		}
		out = append(out, item)
	}
	for _, opt := range sortedKeys(ci) {
		if opt != "added" && g.conf[opt] == "" {
			out = append(out, map[string]any{"key": opt, "delete": 1})
		}
	}
	return out, nil
}

// putCloudInit is PUT …/qemu/{vmid}/cloudinit (cloudinit_update).
func (s *Simulator) putCloudInit(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	if err := checkLock(g, false); err != nil {
		return nil, errf("%s", err.Error())
	}
	g.generateCloudInit()
	return nil, nil
}

// dumpCloudInit is GET …/qemu/{vmid}/cloudinit/dump: the files as they
// would be generated from the current config.
func (s *Simulator) dumpCloudInit(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	if c.p["type"] == "" {
		return nil, paramErr1("type", "property is missing and it is not optional")
	}
	files, err := renderNoCloud(g.vmid, cloudInitSnapshot(g.conf))
	if err != nil {
		return nil, err
	}
	switch c.p["type"] {
	case "user":
		return files.UserData, nil
	case "network":
		return files.NetworkConfig, nil
	}
	return files.MetaData, nil
}

// checkCloudInitParams is what qemu-server does with cloud-init
// parameters before storing them: sshkeys must be URL-encoded OpenSSH
// public keys, and on update a clear-text cipassword is hashed ($5$,
// PVE::Tools::encrypt_pw). On create the password is stored as given.
func checkCloudInitParams(set map[string]string, update bool) error {
	if keys, ok := set["sshkeys"]; ok {
		if err := validateSSHPublicKeys(keys); err != nil {
			return err
		}
	}
	if pw, ok := set["cipassword"]; ok && update && !cryptHashRe.MatchString(pw) {
		set["cipassword"] = shacrypt.SHA256(pw)
	}
	return nil
}

// validateSSHPublicKeys is PVE::Tools::validate_ssh_public_keys after
// uri_unescape: every non-blank line must be a key ssh-keygen -l reads.
func validateSSHPublicKeys(encoded string) error {
	raw, err := url.PathUnescape(encoded)
	if err != nil {
		return errf("SSH public key validation error")
	}
	return validateSSHKeyLines(raw)
}

// validateSSHKeyLines checks a newline-separated list of OpenSSH keys.
func validateSSHKeyLines(raw string) error {
	for _, line := range strings.Split(raw, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err != nil {
			return errf("SSH public key validation error")
		}
	}
	return nil
}

// sshKeyLines splits an unescaped key list the way cloudinit_userdata does.
func sshKeyLines(raw string) []string {
	var out []string
	for _, line := range strings.Split(raw, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) != "" {
			out = append(out, line)
		}
	}
	return out
}
