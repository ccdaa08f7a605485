package ingest

import (
	"sync"

	"github.com/google/uuid"
)

// Results are handled concurrently (issue 16). Handled one at a time, each
// paid its own VM load, append and commit in turn: with 50 creates in
// flight the results queued here for seconds while the agent sat mostly
// idle (docs/BENCHMARKS.md, "where the time went"). Now results of
// different VMs run at once, up to a bound, and their appends share
// commits (the store's group commit); a VM's results still run one after
// the other, in the order they were delivered, as do the agent's requests
// (its per-VM queue), and so do the guest addresses the agent reports after
// a start (a message per VM, as many as its results). Every other message
// (observations, inventory) waits for every message delivered before it and
// runs alone,
// and the messages after it wait for it: reconciliation judges drift on
// the VMs' streams, which must hold every result published before the
// observation, exactly as when everything ran in turn.

// resultConcurrency bounds the results handled at once: each holds a
// connection of the service's pool while it loads and appends (the pool,
// app.DefaultPoolSize, is at least 12, shared with the API and the
// projectors).
const resultConcurrency = 8

// lanes runs functions keyed by VM: one key's in submission order, up to max
// at once over all keys.
type lanes struct {
	sem chan struct{}

	mu     sync.Mutex
	queues map[uuid.UUID][]func() // a key present has a runner
	wg     sync.WaitGroup         // runners
}

func newLanes(max int) *lanes {
	return &lanes{sem: make(chan struct{}, max), queues: map[uuid.UUID][]func(){}}
}

// run queues f behind key's earlier functions.
func (l *lanes) run(key uuid.UUID, f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	q, running := l.queues[key]
	l.queues[key] = append(q, f)
	if !running {
		l.wg.Add(1)
		go l.drain(key)
	}
}

// drain runs key's queue until it is empty.
func (l *lanes) drain(key uuid.UUID) {
	defer l.wg.Done()
	for {
		l.mu.Lock()
		q := l.queues[key]
		if len(q) == 0 {
			delete(l.queues, key)
			l.mu.Unlock()
			return
		}
		f := q[0]
		l.queues[key] = q[1:]
		l.mu.Unlock()
		l.sem <- struct{}{}
		f()
		<-l.sem
	}
}

// wait returns once every function queued so far has run.
func (l *lanes) wait() { l.wg.Wait() }
