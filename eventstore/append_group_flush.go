package eventstore

import (
	"context"
	"time"
)

// A flusher's cycle: gather the next group, commit it (commitGroup), and
// retire once no append has come for a while (append_group.go says why
// flushers gather and linger).

// flusherLinger is how long a flusher whose queue ran dry waits for the next
// append before it retires. Without it, a flusher that has just answered its
// group retires a moment before those callers append again, and the first
// of them, finding a flusher free, runs alone. A caller never waits for the
// linger: an append that arrives meanwhile wakes the waiting flusher.
const flusherLinger = 200 * time.Microsecond

// flusherGather bounds how long a flusher waits for its last group's callers
// to append again before it commits what has come (gather).
const flusherGather = 100 * time.Microsecond

// flush commits queued appends, a group at a time, until none has arrived
// for flusherLinger; then the flusher retires. Before each group it gathers
// (gather).
func (s *Store) flush(ctx context.Context) {
	g := s.group
	timer := time.NewTimer(flusherLinger)
	defer timer.Stop()
	expected := 1
	for {
		g.gather(expected, timer)
		g.mu.Lock()
		batch := g.take()
		if len(batch) == 0 {
			g.mu.Unlock()
			if g.await(timer, flusherLinger) {
				expected = 1
				continue
			}
			g.mu.Lock()
			if batch = g.take(); len(batch) == 0 {
				g.active--
				g.mu.Unlock()
				return
			}
		}
		g.mu.Unlock()
		expected = len(batch)
		s.commitGroup(ctx, batch)
	}
}

// gather waits, at most flusherGather, until expected appends are queued:
// a flusher's callers append again as soon as they are answered, and
// waiting the few microseconds they take to come back commits them
// together instead of one by one (docs/BENCHMARKS.md, "Issue 16, twelfth
// session").
func (g *appendGroup) gather(expected int, timer *time.Timer) {
	deadline := time.Now().Add(flusherGather)
	for {
		g.mu.Lock()
		queued := g.queued()
		g.mu.Unlock()
		left := time.Until(deadline)
		if queued >= expected || left <= 0 || !g.await(timer, left) {
			return
		}
	}
}

// await waits at most d for an append to arrive; false when none did.
func (g *appendGroup) await(timer *time.Timer, d time.Duration) bool {
	timer.Reset(d)
	select {
	case <-g.arrived:
		return true
	case <-timer.C:
		return false
	}
}

// queued counts the appends waiting for a flusher. Callers hold mu.
func (g *appendGroup) queued() int {
	n := 0
	for _, q := range g.pending {
		if !q.taken {
			n++
		}
	}
	return n
}
