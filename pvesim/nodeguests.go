package pvesim

import "sort"

// Every guest is in s.guests (by vmid) and in s.onNode (by node, then
// vmid), so what a node is asked about (its status, its guest lists, its
// storage) costs what that node holds, not what the whole cluster holds:
// with 10,000 guests over 20 nodes, GET /nodes/{node}/status reads 500.
// setGuest and unsetGuest are the only writers of both; s.mu is held.

// setGuest registers g under its vmid, replacing any guest of that vmid.
func (s *Simulator) setGuest(g *guest) {
	s.unsetGuest(g.vmid)
	s.touch()
	s.guests[g.vmid] = g
	on := s.onNode[g.node]
	if on == nil {
		on = map[int]*guest{}
		s.onNode[g.node] = on
	}
	on[g.vmid] = g
}

// unsetGuest removes the guest of vmid, if any.
func (s *Simulator) unsetGuest(vmid int) {
	if old, ok := s.guests[vmid]; ok {
		s.touch()
		delete(s.onNode[old.node], vmid)
		delete(s.guests, vmid)
	}
}

// guestsOn is the guests of node, by vmid.
func (s *Simulator) guestsOn(node string) []*guest {
	on := s.onNode[node]
	out := make([]*guest, 0, len(on))
	for _, g := range on {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].vmid < out[j].vmid })
	return out
}

// nodeUsage is what a node's guests use: memory of those not stopped (plus
// the host's own), the disks of all, the CPU load of those running.
type nodeUsage struct {
	mem, disk uint64
	cpu       float64
}

// touch marks every node's reported usage stale: something that may change
// it happened (a request other than a GET, a task's end, a guest added or
// removed, a fault). s.mu is held.
func (s *Simulator) touch() { s.gen++ }

// reportedUsage is usage(n) as GET /nodes, /nodes/{node}/status and
// /cluster/resources report it: computed once per state change rather
// than per request, since a create's placement asks every node's status
// (and PVE reads them from /proc, at no cost per guest). Capacity checks
// use usage, which is always exact. s.mu is held.
func (s *Simulator) reportedUsage(n *node) nodeUsage {
	if c, ok := s.usageCache[n.name]; ok && c.gen == s.gen {
		return c.u
	}
	u := s.usage(n)
	s.usageCache[n.name] = cachedUsage{gen: s.gen, u: u}
	return u
}

type cachedUsage struct {
	gen uint64
	u   nodeUsage
}

func (s *Simulator) usage(n *node) nodeUsage {
	u := nodeUsage{mem: hostOverhead}
	running := 0
	for _, g := range s.onNode[n.name] {
		if g.state != StatusStopped {
			u.mem += g.memoryMB() << 20
		}
		if g.state == StatusRunning {
			running += g.cores()
		}
		u.disk += g.diskBytes()
	}
	u.cpu = 0.01 + 0.02*float64(running)/float64(max(n.cores, 1))
	return u
}
