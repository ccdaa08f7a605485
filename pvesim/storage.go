package pvesim

import (
	"fmt"
	"slices"
	"strings"
)

// storageDef is one entry of the cluster's storage.cfg. Every node has
// "local" (a directory: ISO images, container templates, backups, and
// guest disks as raw files) and
// "local-lvm" (LVM-thin: guest disks), as a default PVE installation does;
// "backup-nfs" is a shared backup store mounted on every node, so a backup
// taken on one node restores on another.
type storageDef struct {
	id, typ, content, path string
	shared                 bool
}

var storageDefs = []storageDef{
	{id: "local", typ: "dir", content: "backup,images,iso,rootdir,vztmpl", path: "/var/lib/vz"},
	{id: "local-lvm", typ: "lvmthin", content: "images,rootdir"},
	{id: "backup-nfs", typ: "nfs", content: "backup", path: "/mnt/pve/backup-nfs", shared: true},
}

// Capacity of the directory and NFS storages (local-lvm has the node's).
const (
	localDirBytes  = 100 << 30
	backupNFSBytes = 4 << 40
)

func findStorage(id string) *storageDef {
	for i := range storageDefs {
		if storageDefs[i].id == id {
			return &storageDefs[i]
		}
	}
	return nil
}

func (d *storageDef) holds(content string) bool {
	return slices.Contains(strings.Split(d.content, ","), content)
}

// errNoStorage is pve-storage's storage_config error.
func errNoStorage(id string) *apiError { return errf("storage '%s' does not exist", id) }

// storageUsage is used and total bytes of storage d as node n sees it.
// s.mu must be held.
func (s *Simulator) storageUsage(n *node, d *storageDef) (used, total uint64) {
	switch d.id {
	case "local-lvm":
		return s.nodeDiskUsed(n), n.storage
	case "local":
		total = localDirBytes
	default:
		total = backupNFSBytes
	}
	for _, b := range s.backupsOn(n.name, d.id) {
		used += b.size
	}
	return used, total
}

// getStorages is GET /nodes/{node}/storage: the storages the node can
// use, optionally those holding one of ?content= or only ?storage=.
func (s *Simulator) getStorages(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.findNode(c.node)
	if n == nil {
		return nil, errNoNode(c.node)
	}
	var want []string
	if v := c.p["content"]; v != "" {
		want = strings.Split(v, ",")
	}
	out := []map[string]any{}
	for i := range storageDefs {
		d := &storageDefs[i]
		if id := c.p["storage"]; id != "" && id != d.id {
			continue
		}
		if len(want) > 0 && !slices.ContainsFunc(want, d.holds) {
			continue
		}
		used, total := s.storageUsage(n, d)
		avail := uint64(0)
		if total > used {
			avail = total - used
		}
		out = append(out, map[string]any{
			"storage": d.id, "type": d.typ, "content": d.content, "shared": boolInt(d.shared),
			"active": 1, "enabled": 1, "total": total, "used": used, "avail": avail,
			"used_fraction": float64(used) / float64(total),
		})
	}
	return out, nil
}

// getStorageContent is GET /nodes/{node}/storage/{storage}/content: the
// node's guest volumes on local-lvm, or the backups on a backup storage,
// filtered by ?content= and ?vmid=.
func (s *Simulator) getStorageContent(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, d, err := s.storageOf(c)
	if err != nil {
		return nil, err
	}
	vmid := c.p["vmid"]
	out := []map[string]any{}
	if ct := c.p["content"]; ct == "" || ct == "images" || ct == "rootdir" {
		for _, g := range s.guestsOn(n.name) {
			if vmid != "" && vmid != fmt.Sprint(g.vmid) {
				continue
			}
			out = append(out, s.guestVolumes(g, d.id, ct)...)
		}
	}
	if ct := c.p["content"]; (ct == "" || ct == "vztmpl") && vmid == "" && d.holds("vztmpl") {
		for _, volid := range s.opts.OSTemplates {
			if sid, _, _ := strings.Cut(volid, ":"); sid == d.id {
				out = append(out, osTemplateEntry(volid))
			}
		}
	}
	if ct := c.p["content"]; ct == "" || ct == "backup" {
		for _, b := range s.backupsOn(n.name, d.id) {
			if vmid == "" || vmid == fmt.Sprint(b.vmid) {
				out = append(out, b.contentEntry())
			}
		}
	}
	return out, nil
}

// guestVolumes lists g's disks that live on storage, as content entries.
func (s *Simulator) guestVolumes(g *guest, storage, content string) []map[string]any {
	ct := "images"
	if g.kind == kindLXC {
		ct = "rootdir"
	}
	if content != "" && content != ct {
		return nil
	}
	var out []map[string]any
	for _, k := range g.diskKeys() {
		vol, _, _ := strings.Cut(g.conf[k], ",")
		if sid, _, _ := strings.Cut(vol, ":"); sid != storage {
			continue
		}
		out = append(out, map[string]any{"volid": vol, "format": "raw", "size": diskSize(g.conf[k]),
			"vmid": g.vmid, "content": ct, "ctime": g.startedAt.Unix()})
	}
	return out
}

// storageOf resolves {node} and {storage}. s.mu must be held.
func (s *Simulator) storageOf(c *call) (*node, *storageDef, error) {
	n := s.findNode(c.node)
	if n == nil {
		return nil, nil, errNoNode(c.node)
	}
	id := c.r.PathValue("storage")
	d := findStorage(id)
	if d == nil {
		return nil, nil, errNoStorage(id)
	}
	return n, d, nil
}

// getStorageStatus is GET /nodes/{node}/storage/{storage}/status.
func (s *Simulator) getStorageStatus(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, d, err := s.storageOf(c)
	if err != nil {
		return nil, err
	}
	used, total := s.storageUsage(n, d)
	return map[string]any{"type": d.typ, "content": d.content, "shared": boolInt(d.shared), "active": 1, "enabled": 1,
		"total": total, "used": used, "avail": total - min(used, total)}, nil
}

// osTemplateEntry is a container template (vztmpl) as pve-storage lists
// it: the format is the archive's compression ("tzst" for .tar.zst).
func osTemplateEntry(volid string) map[string]any {
	format := "tgz"
	switch {
	case strings.HasSuffix(volid, ".tar.zst"):
		format = "tzst"
	case strings.HasSuffix(volid, ".tar.xz"):
		format = "txz"
	case strings.HasSuffix(volid, ".tar.gz"):
		format = "tgz"
	}
	return map[string]any{"volid": volid, "format": format, "content": "vztmpl", "size": uint64(120 << 20), "ctime": int64(1717200000)}
}
