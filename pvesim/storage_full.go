package pvesim

import (
	"fmt"
	"sort"
)

// FillStorage makes backup storage id full (or, with full false, no
// longer): a vzdump to it then writes until the disk runs out, and the
// job ends as PVE's does, "job errors" with the guest's error in the log
// (vma's "No space left on device" for a VM, tar's for a container), no
// archive left behind. Backups that are there stay.
func (s *Simulator) FillStorage(id string, full bool) error {
	if findStorage(id) == nil {
		return fmt.Errorf("pvesim: no storage %q", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.fullStorages == nil {
		s.faults.fullStorages = map[string]bool{}
	}
	s.faults.fullStorages[id] = full
	return nil
}

// errNoSpace is vzdump's per-guest error when the archive cannot be
// written. s.mu must be held.
func (s *Simulator) errNoSpace(g *guest, d *storageDef) string {
	if !s.faults.fullStorages[d.id] {
		return ""
	}
	if g.kind == kindLXC {
		return "command 'set -o pipefail && lxc-usernsexec -m u:0:100000:65536 -m g:0:100000:65536 -- tar cpf - --totals --one-file-system ./' failed: exit code 2 (tar: -: Wrote only 4096 of 10240 bytes: No space left on device)"
	}
	return "vma_queue_write: write error - No space left on device"
}

// BackupVolumes lists the volume ids of every backup archive, sorted, for
// assertions and tooling.
func (s *Simulator) BackupVolumes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.backups))
	for _, b := range s.backups {
		out = append(out, b.volid())
	}
	sort.Strings(out)
	return out
}

// SnapshotNames lists a guest's snapshots (not "current"), oldest first.
func (s *Simulator) SnapshotNames(vmid int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.guests[vmid]
	if !ok {
		return nil
	}
	out := make([]string, 0, len(g.snapshots))
	for _, sn := range g.snapshots {
		out = append(out, sn.name)
	}
	return out
}
