package pvesim

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// backup is a vzdump archive on a backup storage. It keeps the guest's
// configuration as it was, so that a restore recreates the guest (the disks'
// data is not simulated, only their sizes).
type backup struct {
	storage  string
	node     string // the node whose "local" holds it; "" on shared storage
	volname  string // "backup/vzdump-qemu-100-2026_12_04-09_00_00.vma.zst"
	kind     guestKind
	vmid     int
	ctime    time.Time
	size     uint64
	format   string // "vma.zst", "tar.zst", "vma", ...
	notes    string
	protect  bool
	conf     map[string]string
	diskSize uint64
}

func (b *backup) volid() string { return b.storage + ":" + b.volname }

func (b *backup) contentEntry() map[string]any {
	m := map[string]any{"volid": b.volid(), "format": b.format, "size": b.size, "ctime": b.ctime.Unix(),
		"vmid": b.vmid, "content": "backup", "subtype": string(b.kind)}
	if b.notes != "" {
		m["notes"] = firstLine(b.notes)
	}
	if b.protect {
		m["protected"] = 1
	}
	return m
}

// path is where PVE keeps the archive on disk.
func (b *backup) path() string {
	d := findStorage(b.storage)
	return d.path + "/dump/" + strings.TrimPrefix(b.volname, "backup/")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// backupsOn lists the backups node sees on storage, oldest first. s.mu
// must be held.
func (s *Simulator) backupsOn(node, storage string) []*backup {
	d := findStorage(storage)
	var out []*backup
	for _, b := range s.backups {
		if b.storage == storage && (d.shared || b.node == node) {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].ctime.Before(out[j].ctime) || (out[i].ctime.Equal(out[j].ctime) && out[i].volname < out[j].volname)
	})
	return out
}

// findBackup resolves a volume as PVE's content routes take it: a full
// volume id, or a volume name with {storage}. s.mu must be held.
func (s *Simulator) findBackup(node, storage, volume string) (*backup, error) {
	sid, volname, ok := strings.Cut(volume, ":")
	if !ok {
		sid, volname = storage, volume
	} else if storage != "" && sid != storage {
		return nil, errf("storage ID mismatch (%s != %s)", sid, storage)
	}
	d := findStorage(sid)
	if d == nil {
		return nil, errNoStorage(sid)
	}
	for _, b := range s.backupsOn(node, sid) {
		if b.volname == volname {
			return b, nil
		}
	}
	return nil, errf("volume '%s:%s' does not exist", sid, volname)
}

// backupFormats maps vzdump's compress option to the archive suffix.
var backupFormats = map[string]string{"0": "", "1": ".lzo", "gzip": ".gz", "lzo": ".lzo", "zstd": ".zst"}

// backupRatio is the share of the disks an archive takes (synthetic:
// compressed archives of mostly empty disks are small).
var backupRatio = map[string]uint64{"": 2, ".lzo": 5, ".gz": 6, ".zst": 8}

// newBackup records an archive of g as it is now on storage. Two backups
// of one guest in the same second would share PVE's file name; the
// simulator moves the later one a second on instead of overwriting.
func (s *Simulator) newBackup(g *guest, d *storageDef, compress, notes string, protect bool) *backup {
	ext := backupFormats[compress]
	format := "vma" + ext
	if g.kind == kindLXC {
		format = "tar" + ext
	}
	b := &backup{storage: d.id, kind: g.kind, vmid: g.vmid, ctime: s.now().UTC().Truncate(time.Second), format: format,
		notes: notes, protect: protect, conf: copyConf(g.conf), diskSize: g.diskBytes()}
	delete(b.conf, "lock")
	if !d.shared {
		b.node = g.node
	}
	for {
		b.volname = fmt.Sprintf("backup/vzdump-%s-%d-%s.%s", g.kind, g.vmid, b.ctime.Format("2006_01_02-15_04_05"), format)
		if _, taken := s.backups[b.node+"/"+b.volid()]; !taken {
			break
		}
		b.ctime = b.ctime.Add(time.Second)
	}
	b.size = max(b.diskSize/backupRatio[ext], 1<<20)
	s.backups[b.node+"/"+b.volid()] = b
	return b
}

func (s *Simulator) removeBackup(b *backup) { delete(s.backups, b.node+"/"+b.volid()) }
