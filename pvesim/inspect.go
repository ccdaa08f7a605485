package pvesim

// GuestInfo is a read-only snapshot of a guest for assertions and tooling.
type GuestInfo struct {
	VMID     int
	Kind     string // "qemu" or "lxc"
	Node     string
	Name     string
	Status   string // StatusRunning, StatusStopped or StatusPaused
	Lock     string
	Template bool
	Pool     string
	Config   map[string]string
}

// Guest returns the current state of one guest.
func (s *Simulator) Guest(vmid int) (GuestInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.guests[vmid]
	if !ok {
		return GuestInfo{}, false
	}
	return infoOf(g), true
}

// Guests returns every guest ordered by vmid.
func (s *Simulator) Guests() []GuestInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]GuestInfo, 0, len(s.guests))
	for _, id := range s.sortedVMIDs() {
		out = append(out, infoOf(s.guests[id]))
	}
	return out
}

// RunningTasks counts workers that have not finished yet.
func (s *Simulator) RunningTasks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.tasks {
		if t.running {
			n++
		}
	}
	return n
}

func infoOf(g *guest) GuestInfo {
	return GuestInfo{
		VMID: g.vmid, Kind: string(g.kind), Node: g.node, Name: g.name(), Status: g.state,
		Lock: g.lock(), Template: g.isTemplate(), Pool: g.pool, Config: copyConf(g.conf),
	}
}
