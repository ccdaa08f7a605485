package relay

import (
	"time"

	"github.com/accountdb/accountdb/eventlog"
)

// Status is what a relay reports for health checks and the admin view.
type Status struct {
	// Active is true while this instance holds the publisher lock.
	Active bool
	// Checkpoint is the position of the last event published, acknowledged by
	// JetStream and checkpointed (as of the last time this instance was active).
	Checkpoint eventlog.Position
	// LastPublishAt is when JetStream last acknowledged a batch.
	LastPublishAt time.Time
	// LastError describes the last failure; empty once a later attempt worked.
	LastError   string
	LastErrorAt time.Time
	// Lag is how long the oldest event the active relay has read but not yet
	// had acknowledged has been waiting since it was recorded; 0 when caught up
	// or on standby.
	Lag time.Duration
}

// Status is a snapshot of the relay's state; safe to call at any time.
func (r *Relay) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.status
	if st.Active && !r.pendingSince.IsZero() {
		st.Lag = max(time.Since(r.pendingSince), 0)
	}
	return st
}
