package ingest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// A key's functions run one at a time in the order they were queued,
// whatever runs beside them.
func TestLanesKeepEachKeysOrder(t *testing.T) {
	l := newLanes(4)
	keys := make([]uuid.UUID, 6)
	for i := range keys {
		keys[i] = uuid.New()
	}
	var (
		mu      sync.Mutex
		seen    = map[uuid.UUID][]int{}
		running = map[uuid.UUID]bool{}
		overlap atomic.Bool
	)
	for i := range 300 {
		k := keys[i%len(keys)]
		l.run(k, func() {
			mu.Lock()
			if running[k] {
				overlap.Store(true)
			}
			running[k] = true
			mu.Unlock()
			if i%7 == 0 {
				time.Sleep(time.Millisecond) // let others overtake, if they could
			}
			mu.Lock()
			running[k] = false
			seen[k] = append(seen[k], i)
			mu.Unlock()
		})
	}
	l.wait()
	if overlap.Load() {
		t.Fatal("two functions of one key ran at once")
	}
	total := 0
	for _, k := range keys {
		s := seen[k]
		total += len(s)
		for j := 1; j < len(s); j++ {
			if s[j] < s[j-1] {
				t.Fatalf("key %s ran %d after %d", k, s[j], s[j-1])
			}
		}
	}
	if total != 300 {
		t.Fatalf("%d of 300 functions ran before wait returned", total)
	}
}

// Different keys run at once, up to the bound and never beyond it.
func TestLanesRunKeysAtOnceUpToTheBound(t *testing.T) {
	const bound = 3
	l := newLanes(bound)
	var (
		now, peak atomic.Int32
		started   = make(chan struct{}, 10)
		release   = make(chan struct{})
	)
	for range 10 {
		l.run(uuid.New(), func() {
			n := now.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			started <- struct{}{}
			<-release
			now.Add(-1)
		})
	}
	// bound functions start although none has finished: they run at once.
	for i := range bound {
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of %d functions of different keys started while the first ran", i, bound)
		}
	}
	close(release)
	l.wait()
	if p := peak.Load(); p != bound {
		t.Fatalf("at most %d ran at once, want the bound %d", p, bound)
	}
}

// wait returns at once with nothing queued, and can be called again after
// more is queued.
func TestLanesWaitAgain(t *testing.T) {
	l := newLanes(2)
	l.wait()
	var n atomic.Int32
	k := uuid.New()
	for range 5 {
		l.run(k, func() { n.Add(1) })
	}
	l.wait()
	l.run(uuid.New(), func() { n.Add(1) })
	l.wait()
	if n.Load() != 6 {
		t.Fatalf("%d of 6 ran", n.Load())
	}
}
