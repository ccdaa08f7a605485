package agent

import (
	"sync"
	"time"

	"github.com/google/uuid"
)

// guestChanges tells reconciliation which guests the agent itself was
// changing while it listed a cluster.
//
// A listing is a moment of the cluster, published (as an observation) after
// it was taken. An operation that ran at any time since the listing began
// may have published its result before the observation: a clone listed as
// stopped a moment before the create started it, whose "provisioned,
// running" result the core records first. The core would then take the
// older status for drift (vm_drift_detected, the VM stopped) until the next
// listing set it right. So every guest of a VM that had an operation in
// progress at any time since the listing began is marked as changing: its
// status is a moment of that operation, which its own result reports.
//
// One clock decides, the agent's own (monotonic): an operation counts from
// before its first call to Proxmox until after its result is published. And
// an observation is built and published while no result is being published
// (published): an operation that begins after the marks were taken cannot
// have its result on the bus before the observation.
type guestChanges struct {
	mu       sync.Mutex
	running  map[uuid.UUID]int       // operations in progress, per VM
	finished map[uuid.UUID]time.Time // when the last one finished, per VM

	published sync.RWMutex // results under its read side, observations under its write side
}

// publishListing publishes, by publish, the observation of a listing
// that began at listed, given which guests were changing meanwhile.
func (c *guestChanges) publishListing(listed time.Time, publish func(changing func(uuid.UUID) bool) bool) bool {
	c.published.Lock()
	defer c.published.Unlock()
	return publish(c.since(listed))
}

// publishResult runs publish, one attempt to publish a result, never while
// an observation is being built and published.
func (c *guestChanges) publishResult(publish func() error) error {
	c.published.RLock()
	defer c.published.RUnlock()
	return publish()
}

// changesKept is how long before a listing's start a finished operation is
// still remembered: longer than any listing takes (a cluster of 10,000
// guests lists in well under a second), so that another cluster's listing,
// begun earlier and still under way, finds it. Each listing forgets what
// finished longer ago than that; end stays O(1) per operation.
const changesKept = time.Minute

func newGuestChanges() *guestChanges {
	return &guestChanges{running: map[uuid.UUID]int{}, finished: map[uuid.UUID]time.Time{}}
}

// begin notes an operation on vm starting; end must follow.
func (c *guestChanges) begin(vm uuid.UUID) {
	c.mu.Lock()
	c.running[vm]++
	c.mu.Unlock()
}

// end notes an operation on vm over: its result published, or the request
// handed back for redelivery.
func (c *guestChanges) end(vm uuid.UUID) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running[vm]--; c.running[vm] <= 0 {
		delete(c.running, vm)
	}
	c.finished[vm] = now
}

// since returns whether the agent had an operation on vm in progress at
// any time since listed (the moment a listing began).
func (c *guestChanges) since(listed time.Time) func(vm uuid.UUID) bool {
	c.mu.Lock()
	running := make(map[uuid.UUID]bool, len(c.running)+len(c.finished))
	for id := range c.running {
		running[id] = true
	}
	for id, at := range c.finished {
		switch {
		case !at.Before(listed):
			running[id] = true
		case listed.Sub(at) > changesKept:
			delete(c.finished, id) // before any listing still under way
		}
	}
	c.mu.Unlock()
	return func(vm uuid.UUID) bool { return running[vm] }
}
