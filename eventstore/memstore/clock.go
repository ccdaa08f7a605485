package memstore

import (
	"sync"
	"time"
)

// Clock is the wall clock, unless a test pins it to an instant. A store
// given its Now (WithClock) records that instant for appends, as
// PostgreSQL records the start of a transaction that may commit much later:
// pinned to an instant taken before other appends, it records events
// before their predecessors.
type Clock struct {
	mu     sync.Mutex
	pinned time.Time
}

// Now is the pinned instant, or the time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.pinned.IsZero() {
		return c.pinned
	}
	return time.Now()
}

// Pin makes Now answer at, until Pin(time.Time{}) unpins it.
func (c *Clock) Pin(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pinned = at
}
