package pvesim

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"
)

// task is a PVE worker: it answers a UPID at once and reaches its outcome
// after its duration, like fork_worker does.
type task struct {
	upid    string
	node    string
	typ     string
	id      string
	user    string
	pid     uint32
	pstart  uint32
	start   time.Time
	end     time.Time
	running bool
	exit    string
	log     []string

	forced   string // injected failure decided at start
	commit   func(t *task) error
	rollback func()
	holds    *guest // guest whose config flock the task holds
}

// taskSpec describes a worker. prepare runs when the worker starts (PVE's
// checks under the config lock); commit applies the effect when the worker
// ends; rollback undoes side effects made before the worker (a create's
// placeholder config) if the task fails at any point.
type taskSpec struct {
	node     string
	typ      string
	id       string
	user     string
	weight   float64
	guest    *guest
	prepare  func() error
	commit   func(t *task) error
	rollback func()
	// open workers (consoles) run until their owner finishes them.
	open bool
}

// taskWeights scale Options.TimeScale per worker type so a clone takes
// longer than a stop, roughly as on real hardware.
var taskWeights = map[string]float64{
	"create": 1, "clone": 2, "start": 0.5, "stop": 0.3, "shutdown": 1, "reboot": 1,
	"reset": 0.2, "suspend": 0.3, "resume": 0.2, "destroy": 0.5, "snapshot": 0.5,
	"delsnapshot": 0.3, "rollback": 0.5, "resize": 0.2, "config": 0.1, "template": 0.3,
	"vzdump": 2, "restore": 2, "imgdel": 0.2,
}

// startTask must be called with s.mu held.
func (s *Simulator) startTask(spec taskSpec) *task {
	now := s.now()
	s.taskSeq++
	t := &task{
		node:     spec.node,
		typ:      spec.typ,
		id:       spec.id,
		user:     spec.user,
		pid:      uint32(os.Getpid()*1000) + s.taskSeq,
		pstart:   uint32(now.Sub(s.nodeBoot(spec.node)) / (10 * time.Millisecond)),
		start:    now,
		running:  true,
		commit:   spec.commit,
		rollback: spec.rollback,
	}
	t.upid = fmt.Sprintf("UPID:%s:%08X:%08X:%08X:%s:%s:%s:", t.node, t.pid, t.pstart, now.Unix(), t.typ, t.id, t.user)
	s.tasks[t.upid] = t

	if msg, ok := s.takeTaskFault(t.typ); ok {
		t.forced = msg
	} else if spec.prepare != nil {
		if err := spec.prepare(); err != nil {
			t.forced = err.Error()
		}
	}
	if t.forced == "" && spec.guest != nil {
		spec.guest.busy = t.upid
		t.holds = spec.guest
	}

	if spec.open && t.forced == "" {
		return t
	}
	d := time.Duration(float64(s.opts.TimeScale) * spec.weight)
	if d <= 0 {
		s.finishTask(t)
		return t
	}
	time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.finishTask(t)
	})
	return t
}

func weightOf(op string) float64 {
	if w, ok := taskWeights[op]; ok {
		return w
	}
	return 1
}

// finishTask must be called with s.mu held; it is idempotent so a task
// stopped through the API is not finished twice by its timer.
func (s *Simulator) finishTask(t *task) {
	if !t.running {
		return
	}
	if t.holds != nil && t.holds.busy == t.upid {
		t.holds.busy = ""
	}
	msg := t.forced
	if msg == "" && t.commit != nil {
		if err := t.commit(t); err != nil {
			msg = err.Error()
		}
	}
	if msg != "" {
		if t.rollback != nil {
			t.rollback()
		}
		t.exit = msg
		t.log = append(t.log, "TASK ERROR: "+msg)
	} else {
		t.exit = "OK"
		t.log = append(t.log, "TASK OK")
	}
	t.running = false
	t.end = s.now()
	if t.holds != nil && s.guests[t.holds.vmid] == t.holds {
		s.retally(t.holds)
	}
}

func (s *Simulator) nodeBoot(name string) time.Time {
	if n := s.findNode(name); n != nil {
		return n.boot
	}
	return s.now()
}

func (t *task) status() map[string]any {
	m := map[string]any{
		"upid":      t.upid,
		"node":      t.node,
		"pid":       t.pid,
		"pstart":    t.pstart,
		"starttime": t.start.Unix(),
		"type":      t.typ,
		"id":        t.id,
		"user":      t.user,
		"status":    "running",
	}
	if !t.running {
		m["status"] = "stopped"
		m["exitstatus"] = t.exit
		m["endtime"] = t.end.Unix()
	}
	return m
}

func (s *Simulator) lookupTask(c *call) (*task, error) {
	upid := c.r.PathValue("upid")
	t, ok := s.tasks[upid]
	if !ok || t.node != c.node {
		if s.findNode(c.node) == nil {
			return nil, errNoNode(c.node)
		}
		return nil, errf("no such task")
	}
	return t, nil
}

func (s *Simulator) getTaskStatus(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupTask(c)
	if err != nil {
		return nil, err
	}
	return t.status(), nil
}

func (s *Simulator) getTaskLog(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupTask(c)
	if err != nil {
		return nil, err
	}
	start, _ := strconv.Atoi(c.p["start"])
	limit, err := strconv.Atoi(c.p["limit"])
	if err != nil || limit <= 0 {
		limit = 50
	}
	out := []map[string]any{}
	for i := start; i < len(t.log) && len(out) < limit; i++ {
		out = append(out, map[string]any{"n": i + 1, "t": t.log[i]})
	}
	return out, nil
}

// deleteTask stops a running worker; PVE reports such tasks as failed.
func (s *Simulator) deleteTask(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupTask(c)
	if err != nil {
		return nil, err
	}
	if t.running {
		t.forced = "interrupted by signal"
		s.finishTask(t)
	}
	return nil, nil
}

func (s *Simulator) taskList(node string) []map[string]any {
	var list []*task
	for _, t := range s.tasks {
		if node == "" || t.node == node {
			list = append(list, t)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].start.After(list[j].start) })
	out := make([]map[string]any, 0, len(list))
	for _, t := range list {
		m := t.status()
		if !t.running {
			m["status"] = t.exit
		}
		out = append(out, m)
	}
	return out
}

func (s *Simulator) getNodeTasks(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.findNode(c.node) == nil {
		return nil, errNoNode(c.node)
	}
	return s.taskList(c.node), nil
}

func (s *Simulator) getClusterTasks(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.taskList(""), nil
}
