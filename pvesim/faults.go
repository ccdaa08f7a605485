package pvesim

import (
	"fmt"
	"net/http"
	"time"
)

// faults are the failure modes tests switch on to exercise AccountDB's
// error handling; all fields are guarded by Simulator.mu.
type faults struct {
	taskFails    map[string][]string
	latency      time.Duration
	failRequests int
	failStatus   int
	errorRate    float64
	rateStatus   int
	// fullStorages are the storages FillStorage filled.
	fullStorages map[string]bool
}

// FailNextTasks makes the next n workers of taskType (PVE's worker names:
// qmcreate, qmclone, qmstart, vzcreate, ...) finish with exit status msg.
// An empty msg uses a PVE-like default for the type. Side effects of the
// request are rolled back, as PVE does for a failed worker.
func (s *Simulator) FailNextTasks(taskType string, n int, msg string) {
	if msg == "" {
		msg = defaultTaskFailure(taskType)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.taskFails == nil {
		s.faults.taskFails = map[string][]string{}
	}
	for i := 0; i < n; i++ {
		s.faults.taskFails[taskType] = append(s.faults.taskFails[taskType], msg)
	}
}

func defaultTaskFailure(typ string) string {
	switch typ {
	case "qmstart":
		return "start failed: QEMU exited with code 1"
	case "vzstart":
		return "startup for container failed"
	case "qmcreate", "vzcreate":
		return "unable to create guest - storage allocation failed (injected)"
	case "qmclone", "vzclone":
		return "clone failed: copy failed: input/output error (injected)"
	}
	return "command failed: exit code 1 (injected)"
}

// takeTaskFault must be called with s.mu held.
func (s *Simulator) takeTaskFault(typ string) (string, bool) {
	q := s.faults.taskFails[typ]
	if len(q) == 0 {
		return "", false
	}
	s.faults.taskFails[typ] = q[1:]
	return q[0], true
}

// SetLatency delays every request by d before it is handled.
func (s *Simulator) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.latency = d
}

func (s *Simulator) requestLatency() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.latency
}

// FailNextRequests answers the next n requests with status (default 500)
// before they touch any state.
func (s *Simulator) FailNextRequests(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.failRequests = n
	s.faults.failStatus = status
}

// SetErrorRate fails each request with probability rate (0..1), using the
// seeded generator so runs repeat.
func (s *Simulator) SetErrorRate(rate float64, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.errorRate = rate
	s.faults.rateStatus = status
}

func (s *Simulator) injectedRequestFailure() *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	status := 0
	switch {
	case s.faults.failRequests > 0:
		s.faults.failRequests--
		status = s.faults.failStatus
	case s.faults.errorRate > 0 && s.rng.Float64() < s.faults.errorRate:
		status = s.faults.rateStatus
	default:
		return nil
	}
	if status < 500 || status > 599 {
		status = http.StatusInternalServerError
	}
	text := http.StatusText(status)
	if text == "" {
		text = "Server Error"
	}
	return &apiError{status: status, message: text + " (pvesim injected fault)"}
}

// HoldLock sets the config lock of a guest (e.g. "backup", "migrate") as
// if another PVE operation held it; guest operations then fail with
// "VM is locked (backup)". An empty lock means "backup".
func (s *Simulator) HoldLock(vmid int, lock string) error {
	if lock == "" {
		lock = "backup"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.guests[vmid]
	if !ok {
		return fmt.Errorf("pvesim: no guest %d", vmid)
	}
	g.conf["lock"] = lock
	return nil
}

// ReleaseLock clears a guest's config lock.
func (s *Simulator) ReleaseLock(vmid int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.guests[vmid]
	if !ok {
		return fmt.Errorf("pvesim: no guest %d", vmid)
	}
	delete(g.conf, "lock")
	return nil
}

// SetNodeCapacity replaces a node's memory and storage capacity (bytes);
// zero leaves a value unchanged.
func (s *Simulator) SetNodeCapacity(nodeName string, memory, storage uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.findNode(nodeName)
	if n == nil {
		return fmt.Errorf("pvesim: no node %q", nodeName)
	}
	if memory > 0 {
		n.memory = memory
	}
	if storage > 0 {
		n.storage = storage
	}
	return nil
}

// SetNodeOnline takes a node down (online false) or brings it back, as a
// power loss or a network partition would: /nodes lists it "offline" with
// no figures, /cluster/status with online 0, /cluster/resources its guests
// with status "unknown", and every request for a path under /nodes/{node}
// fails with pveproxy's 595 "No route to host". Its guests keep their
// state, which shows again when it is back.
func (s *Simulator) SetNodeOnline(nodeName string, online bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.findNode(nodeName)
	if n == nil {
		return fmt.Errorf("pvesim: no node %q", nodeName)
	}
	n.offline = !online
	return nil
}

// nodeUnreachable is the answer for a request to an offline node; s.mu is
// not held.
func (s *Simulator) nodeUnreachable(name string) *apiError {
	if name == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.findNode(name); n != nil && n.offline {
		return &apiError{status: 595, message: "No route to host"}
	}
	return nil
}

// ExhaustNode makes a node run out of capacity: creates and clones onto it
// fail in their worker with LVM's "insufficient free space" and starts
// fail with QEMU's out-of-memory exit. RestoreNode undoes it.
func (s *Simulator) ExhaustNode(nodeName string) error { return s.setReserved(nodeName, true) }

// RestoreNode ends ExhaustNode.
func (s *Simulator) RestoreNode(nodeName string) error { return s.setReserved(nodeName, false) }

func (s *Simulator) setReserved(nodeName string, v bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.findNode(nodeName)
	if n == nil {
		return fmt.Errorf("pvesim: no node %q", nodeName)
	}
	n.reserved = v
	return nil
}

// DropGuest deletes a guest behind the client's back (someone ran
// `qm destroy` by hand), for drift-detection tests.
func (s *Simulator) DropGuest(vmid int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.guests[vmid]; !ok {
		return fmt.Errorf("pvesim: no guest %d", vmid)
	}
	s.unsetGuest(vmid)
	return nil
}

// SetGuestStatus changes a guest's power state out of band (a crash, an
// admin's `qm stop`): status is StatusRunning, StatusStopped or StatusPaused.
func (s *Simulator) SetGuestStatus(vmid int, status string) error {
	switch status {
	case StatusRunning, StatusStopped, StatusPaused:
	default:
		return fmt.Errorf("pvesim: invalid status %q", status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.guests[vmid]
	if !ok {
		return fmt.Errorf("pvesim: no guest %d", vmid)
	}
	if g.state == StatusStopped && status != StatusStopped {
		s.taskSeq++
		g.pid = 10000 + int(s.taskSeq)
		g.generateCloudInit() // a start outside the API is still `qm start`
		s.bootGuest(g)
	}
	s.setState(g, status)
	return nil
}

// ClearFaults switches off every request and task fault (locks and
// capacity changes stay, since they are state).
func (s *Simulator) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = faults{}
}
