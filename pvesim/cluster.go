package pvesim

import (
	"fmt"
	"sort"
	"strconv"
)

// hostOverhead is what PVE itself uses on every node, so an idle node
// never reports zero memory.
const hostOverhead = 2 << 30

func (s *Simulator) findNode(name string) *node {
	for _, n := range s.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// nodeMemUsed and nodeDiskUsed are n's usage for a capacity check (start,
// clone, create, restore, resize) or a storage's status: the running sums
// (nodeguests.go), which are exact once the guest being checked is
// retallied (checkStorage and powerOn do).
func (s *Simulator) nodeMemUsed(n *node) uint64 { return s.reportedUsage(n).mem }

func (s *Simulator) nodeDiskUsed(n *node) uint64 { return s.reportedUsage(n).disk }

func (s *Simulator) getVersion(c *call) (any, error) {
	return map[string]any{
		"version": s.opts.Version,
		"release": releaseOf(s.opts.Version),
		"repoid":  "b46aac3b42da5d15",
	}, nil
}

func releaseOf(v string) string {
	var major, minor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil {
		return v
	}
	return fmt.Sprintf("%d.%d", major, minor)
}

func (s *Simulator) getNodes(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]map[string]any, 0, len(s.nodes))
	for _, n := range s.nodes {
		out = append(out, s.nodeResource(n))
	}
	return out, nil
}

func (s *Simulator) nodeResource(n *node) map[string]any {
	if n.offline {
		// What PVE lists of a node it cannot reach: no figures.
		return map[string]any{"id": "node/" + n.name, "type": "node", "node": n.name, "status": "offline", "level": ""}
	}
	u := s.reportedUsage(n)
	return map[string]any{
		"id":              "node/" + n.name,
		"type":            "node",
		"node":            n.name,
		"status":          "online",
		"level":           "",
		"cpu":             u.cpu,
		"maxcpu":          n.cores,
		"mem":             u.mem,
		"maxmem":          n.memory,
		"disk":            u.disk,
		"maxdisk":         n.storage,
		"uptime":          uint64(s.now().Sub(n.boot).Seconds()),
		"ssl_fingerprint": "5E:1F:3C:2A:AC:C0:4D:B0:9E:57:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:" + fmt.Sprintf("%02X", n.id),
		"cgroup-mode":     2,
	}
}

func (s *Simulator) getNodeStatus(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.findNode(c.node)
	if n == nil {
		return nil, errNoNode(c.node)
	}
	u := s.reportedUsage(n)
	mem, disk := u.mem, u.disk
	return map[string]any{
		"uptime":     uint64(s.now().Sub(n.boot).Seconds()),
		"cpu":        u.cpu,
		"wait":       0.0,
		"idle":       0,
		"loadavg":    []string{"0.12", "0.10", "0.08"},
		"kversion":   "Linux 6.8.12-1-pve #1 SMP PREEMPT_DYNAMIC PMX 6.8.12-1",
		"pveversion": "pve-manager/" + s.opts.Version + "/b46aac3b42da5d15",
		"cpuinfo": map[string]any{
			"model": "pvesim virtual CPU", "cores": n.cores, "sockets": 1, "cpus": n.cores,
			"mhz": "2999.998", "user_hz": 100, "hvm": "1", "flags": "fpu vme de pse tsc msr pae",
		},
		"memory": map[string]any{"total": n.memory, "used": mem, "free": n.memory - min(mem, n.memory)},
		"swap":   map[string]any{"total": 8 << 30, "used": 0, "free": 8 << 30},
		"rootfs": map[string]any{"total": n.storage, "used": disk, "free": n.storage - min(disk, n.storage), "avail": n.storage - min(disk, n.storage)},
		"ksm":    map[string]any{"shared": 0},
	}, nil
}

func (s *Simulator) getClusterStatus(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{{
		"type": "cluster", "id": "cluster", "name": s.opts.ClusterName,
		"version": len(s.nodes) + 1, "quorate": 1, "nodes": len(s.nodes),
	}}
	for _, n := range s.nodes {
		local, online := 0, 1
		if n.id == 1 {
			local = 1
		}
		if n.offline {
			online = 0
		}
		out = append(out, map[string]any{
			"type": "node", "id": "node/" + n.name, "name": n.name, "nodeid": n.id,
			"ip": n.ip, "online": online, "local": local, "level": "",
		})
	}
	return out, nil
}

func (s *Simulator) getClusterResources(c *call) (any, error) {
	typ := c.p["type"]
	switch typ {
	case "", "vm", "node", "storage", "sdn":
	default:
		return nil, paramErr1("type", fmt.Sprintf("value '%s' does not have a value in the enumeration 'vm, storage, node, sdn'", typ))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []any
	if typ == "" || typ == "vm" {
		for _, vmid := range s.sortedVMIDs() {
			out = append(out, s.guestResource(s.guests[vmid]))
		}
	}
	if typ == "" || typ == "node" {
		for _, n := range s.nodes {
			out = append(out, s.nodeResource(n))
		}
	}
	if typ == "" || typ == "storage" {
		for _, n := range s.nodes {
			out = append(out, map[string]any{
				"id": "storage/" + n.name + "/local-lvm", "type": "storage", "storage": "local-lvm",
				"node": n.name, "status": "available", "plugintype": "lvmthin", "content": "rootdir,images",
				"shared": 0, "disk": s.reportedUsage(n).disk, "maxdisk": n.storage,
			})
		}
	}
	if typ == "" { // PVE lists pools only unfiltered: "pool" is not a type filter
		for _, id := range s.sortedPoolIDs() {
			out = append(out, map[string]any{"id": "/pool/" + id, "type": "pool", "pool": id})
		}
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

func (s *Simulator) sortedVMIDs() []int {
	ids := make([]int, 0, len(s.guests))
	for id := range s.guests {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

// resourceRow is a guest's /cluster/resources row. A struct, not a map:
// the listing of 10,000 guests is built under s.mu and encoded after, and
// maps cost several times more of both.
type resourceRow struct {
	ID        string  `json:"id"`
	Type      string  `json:"type"`
	VMID      int     `json:"vmid"`
	Node      string  `json:"node"`
	Name      string  `json:"name"`
	Status    string  `json:"status"`
	Template  int     `json:"template"`
	MaxCPU    int     `json:"maxcpu"`
	MaxMem    uint64  `json:"maxmem"`
	MaxDisk   uint64  `json:"maxdisk"`
	Mem       uint64  `json:"mem"`
	CPU       float64 `json:"cpu"`
	Disk      int     `json:"disk"`
	Uptime    uint64  `json:"uptime"`
	NetIn     int     `json:"netin"`
	NetOut    int     `json:"netout"`
	DiskRead  int     `json:"diskread"`
	DiskWrite int     `json:"diskwrite"`
	Tags      string  `json:"tags,omitempty"`
	Lock      string  `json:"lock,omitempty"`
	Pool      string  `json:"pool,omitempty"`
}

// guestResource is the /cluster/resources row; it reads live state so
// every change is visible at once. A guest on an offline node is listed
// from its configuration with status "unknown", as PVE lists it: nobody
// can say whether it runs.
func (s *Simulator) guestResource(g *guest) resourceRow {
	row := resourceRow{
		ID: string(g.kind) + "/" + strconv.Itoa(g.vmid), Type: string(g.kind), VMID: g.vmid, Node: g.node, Name: g.name(),
		Status: apiStatus(g.state), MaxCPU: g.cores(), MaxMem: g.memoryMB() << 20, MaxDisk: g.diskBytes(),
		Mem: runningMem(g), CPU: runningCPU(g), Uptime: g.uptime(s.now()),
		Tags: g.conf["tags"], Lock: g.lock(), Pool: g.pool,
	}
	if g.isTemplate() {
		row.Template = 1
	}
	if n := s.findNode(g.node); n != nil && n.offline {
		row.Status, row.Mem, row.CPU, row.Uptime = StatusUnknown, 0, 0, 0
	}
	return row
}

func apiStatus(state string) string {
	if state == StatusPaused {
		return StatusRunning
	}
	return state
}

func runningMem(g *guest) uint64 {
	if g.state == StatusStopped {
		return 0
	}
	return (g.memoryMB() << 20) / 2
}

func runningCPU(g *guest) float64 {
	if g.state != StatusRunning {
		return 0
	}
	return 0.015
}

// getNextID does not reserve the id, exactly like PVE: concurrent callers
// can get the same answer and must retry on "already exists".
func (s *Simulator) getNextID(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := c.p["vmid"]; ok {
		id, err := strconv.Atoi(v)
		if err != nil || id < 100 {
			return nil, paramErr1("vmid", fmt.Sprintf("type check ('integer') failed - got '%s'", v))
		}
		if _, used := s.guests[id]; used {
			return nil, paramErr1("vmid", fmt.Sprintf("VM %d already exists", id))
		}
		return strconv.Itoa(id), nil
	}
	for id := 100; ; id++ {
		if _, used := s.guests[id]; !used {
			return strconv.Itoa(id), nil
		}
	}
}
