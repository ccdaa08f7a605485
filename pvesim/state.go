package pvesim

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

type guestKind string

const (
	kindQemu guestKind = "qemu"
	kindLXC  guestKind = "lxc"
)

func (k guestKind) confDir() string {
	if k == kindLXC {
		return "lxc"
	}
	return "qemu-server"
}

func (k guestKind) label() string {
	if k == kindLXC {
		return "CT"
	}
	return "VM"
}

// taskPrefix is the prefix PVE uses for worker types (qmstart, vzstart).
func (k guestKind) taskPrefix() string {
	if k == kindLXC {
		return "vz"
	}
	return "qm"
}

// Guest power states. "paused" is reported by PVE as status=running with
// qmpstatus=paused.
const (
	StatusStopped = "stopped"
	StatusRunning = "running"
	StatusPaused  = "paused"
	// StatusUnknown is what /cluster/resources says of a guest whose node
	// is offline (SetNodeOnline).
	StatusUnknown = "unknown"
)

type node struct {
	name     string
	id       int
	ip       string
	cores    int
	memory   uint64 // bytes
	storage  uint64 // bytes
	reserved bool   // capacity fault: nothing fits any more
	offline  bool   // the node is down (SetNodeOnline)
	boot     time.Time
}

type snapshot struct {
	name        string
	description string
	parent      string
	snaptime    int64
	vmstate     bool
	conf        map[string]string
	state       string
}

type guest struct {
	kind      guestKind
	vmid      int
	node      string
	conf      map[string]string
	state     string
	startedAt time.Time
	pid       int
	// busy is the UPID of the task holding PVE's config flock; other
	// operations time out on it.
	busy      string
	snapshots []*snapshot
	parent    string // name of the current snapshot parent
	// tally is what the guest was last counted for in its node's reported
	// usage (nodeguests.go).
	tally guestTally
	pool  string

	// Cloud-init (qemu): ciDrive is the config the drive was last
	// generated from (nil: empty or no drive); ciRecord is the config's
	// [special:cloudinit] section. booted is what the guest learnt at its
	// last boot (cloud-init for qemu, pve-container's setup for lxc).
	ciDrive      map[string]string
	ciRecord     map[string]string
	booted       *CloudInitData
	agentReadyAt time.Time
	// lxcRootKeys and lxcRootPassword were written into the container's
	// root file system at create (ssh-public-keys, password).
	lxcRootKeys     []string
	lxcRootPassword string
}

func (g *guest) lock() string { return g.conf["lock"] }

func (g *guest) name() string {
	if g.kind == kindLXC {
		return orDefault(g.conf["hostname"], fmt.Sprintf("CT%d", g.vmid))
	}
	return orDefault(g.conf["name"], fmt.Sprintf("VM %d", g.vmid))
}

func (g *guest) isTemplate() bool { return g.conf["template"] == "1" }

// memoryMB reads the configured memory; qemu's PVE 8 property string may
// be "current=2048" as well as "2048".
func (g *guest) memoryMB() uint64 {
	s := strings.TrimPrefix(g.conf["memory"], "current=")
	if i := strings.IndexByte(s, ','); i >= 0 {
		s = s[:i]
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 512
	}
	return n
}

func (g *guest) cores() int {
	n, err := strconv.Atoi(g.conf["cores"])
	if err != nil || n <= 0 {
		n = 1
	}
	if s, err := strconv.Atoi(g.conf["sockets"]); err == nil && s > 1 {
		n *= s
	}
	return n
}

var (
	qemuDiskKeyRe = regexp.MustCompile(`^(scsi|sata|virtio|ide|efidisk|tpmstate)\d+$`)
	sizeOptRe     = regexp.MustCompile(`(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)`)
)

// isDiskKey is qemuDiskKeyRe (and not a CD-ROM), or rootfs/mpN, without
// a regexp: node usage asks it of every key of every guest on the node.
func (g *guest) isDiskKey(k string) bool {
	if g.kind == kindLXC {
		return k == "rootfs" || indexedKey(k, "mp")
	}
	for _, p := range qemuDiskPrefixes {
		if indexedKey(k, p) {
			return !strings.Contains(g.conf[k], "media=cdrom")
		}
	}
	return false
}

var qemuDiskPrefixes = []string{"scsi", "sata", "virtio", "ide", "efidisk", "tpmstate"}

// indexedKey reports whether k is prefix followed by one or more digits.
func indexedKey(k, prefix string) bool {
	if len(k) <= len(prefix) || !strings.HasPrefix(k, prefix) {
		return false
	}
	for _, c := range k[len(prefix):] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// diskKeys lists disk-bearing config keys in a stable order.
func (g *guest) diskKeys() []string {
	var keys []string
	for k := range g.conf {
		if g.isDiskKey(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func (g *guest) diskBytes() uint64 {
	var total uint64
	for k, v := range g.conf {
		if g.isDiskKey(k) {
			total += diskSize(v)
		}
	}
	return total
}

// diskSize parses the size= option of a drive string.
// It reads what sizeOptRe matches without the regexp, which node usage
// would run for every disk of every guest on the node.
func diskSize(spec string) uint64 {
	for opt := range strings.SplitSeq(spec, ",") {
		v, ok := strings.CutPrefix(opt, "size=")
		if !ok {
			continue
		}
		end := 0
		for end < len(v) && (v[end] >= '0' && v[end] <= '9' || v[end] == '.') {
			end++
		}
		f, err := strconv.ParseFloat(v[:end], 64)
		if err != nil {
			return 0
		}
		unit := ""
		if end < len(v) && strings.ContainsRune("KMGT", rune(v[end])) {
			unit = v[end : end+1]
		}
		return uint64(f * float64(unitMultiplier(unit)))
	}
	return 0
}

func unitMultiplier(u string) uint64 {
	switch u {
	case "K":
		return 1 << 10
	case "M":
		return 1 << 20
	case "G":
		return 1 << 30
	case "T":
		return 1 << 40
	}
	return 1
}

// formatSize renders bytes the way PVE writes size= (largest exact unit).
func formatSize(b uint64) string {
	for _, u := range []string{"T", "G", "M", "K"} {
		m := unitMultiplier(u)
		if b >= m && b%m == 0 {
			return fmt.Sprintf("%d%s", b/m, u)
		}
	}
	return strconv.FormatUint(b, 10)
}

func setDiskSize(spec string, size uint64) string {
	repl := "size=" + formatSize(size)
	if sizeOptRe.MatchString(spec) {
		loc := sizeOptRe.FindStringIndex(spec)
		prefix := ""
		if spec[loc[0]] == ',' {
			prefix = ","
		}
		return spec[:loc[0]] + prefix + repl + spec[loc[1]:]
	}
	return spec + "," + repl
}

func (g *guest) uptime(now time.Time) uint64 {
	if g.state == StatusStopped || g.startedAt.IsZero() {
		return 0
	}
	return uint64(now.Sub(g.startedAt) / time.Second)
}

// digest mimics PVE's config digest: any change to the config changes it,
// which is what clients use for optimistic concurrency.
func (g *guest) digest() string {
	keys := make([]string, 0, len(g.conf))
	for k := range g.conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha1.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s: %s\n", k, g.conf[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func copyConf(c map[string]string) map[string]string {
	out := make(map[string]string, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

func sortStrings(s []string) { sort.Strings(s) }
