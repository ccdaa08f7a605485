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
	s.guests[g.vmid] = g
	on := s.onNode[g.node]
	if on == nil {
		on = map[int]*guest{}
		s.onNode[g.node] = on
	}
	on[g.vmid] = g
	g.tally = guestTally{}
	s.retally(g)
}

// unsetGuest removes the guest of vmid, if any.
func (s *Simulator) unsetGuest(vmid int) {
	if old, ok := s.guests[vmid]; ok {
		s.untally(old)
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

// Reported usage is kept as a running sum per node: each guest carries
// what it was last counted for (its tally), and retally moves the node's
// sum by the difference when the guest may have changed. So GET /nodes and
// GET /nodes/{node}/status cost nothing per guest, as on PVE (which reads
// /proc), however many guests a create's placement meets. Capacity checks
// (start, clone, create, restore, resize) read the same sums, after
// retallying the guest they are about: the request or task that checks may
// have changed it (a resize grows its disk first), every other guest was
// retallied when it changed. They used to count every guest afresh, which
// at 10,000 guests walked 500 per node, twice per create, under s.mu (10 %
// of the whole system's CPU in figure 5b). countedUsage, the count afresh,
// stays the definition the tests hold the sums to (checkTallies).
//
// A guest may change by a request on its path (serve retallies the guest
// of {vmid} after every request other than a GET), by a task's end
// (finishTask retallies the guest it holds), by being added or removed
// (setGuest, unsetGuest), or by a fault (SetGuestStatus). s.mu is held.

// retally recounts g in its node's reported usage.
func (s *Simulator) retally(g *guest) {
	now := g.contribution()
	sum := s.tallies[g.node]
	sum.mem += now.mem - g.tally.mem
	sum.disk += now.disk - g.tally.disk
	sum.cores += now.cores - g.tally.cores
	s.tallies[g.node] = sum
	g.tally = now
}

// untally takes g out of its node's reported usage.
func (s *Simulator) untally(g *guest) {
	sum := s.tallies[g.node]
	sum.mem -= g.tally.mem
	sum.disk -= g.tally.disk
	sum.cores -= g.tally.cores
	s.tallies[g.node] = sum
	g.tally = guestTally{}
}

// guestTally is what one guest adds to its node's usage.
type guestTally struct {
	mem, disk uint64
	cores     int // of a running guest
}

func (g *guest) contribution() guestTally {
	t := guestTally{disk: g.diskBytes()}
	if g.state != StatusStopped {
		t.mem = g.memoryMB() << 20
	}
	if g.state == StatusRunning {
		t.cores = g.cores()
	}
	return t
}

// reportedUsage is n's usage from the running sums.
func (s *Simulator) reportedUsage(n *node) nodeUsage {
	sum := s.tallies[n.name]
	return nodeUsage{mem: hostOverhead + sum.mem, disk: sum.disk, cpu: 0.01 + 0.02*float64(sum.cores)/float64(max(n.cores, 1))}
}

// countedUsage is n's usage counted guest by guest.
func (s *Simulator) countedUsage(n *node) nodeUsage {
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

// setState changes g's power state and recounts it.
func (s *Simulator) setState(g *guest, state string) {
	g.state = state
	s.retally(g)
}
