package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// RelayStatus is what a relay reports for health checks and the admin view.
type RelayStatus struct {
	// Active is true while this instance holds the publisher lock.
	Active bool
	// Checkpoint is the position of the last event published, acknowledged by
	// JetStream and checkpointed (as of the last time this instance was active).
	Checkpoint Position
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
func (r *Relay) Status() RelayStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.status
	if st.Active && !r.pendingSince.IsZero() {
		st.Lag = max(time.Since(r.pendingSince), 0)
	}
	return st
}

// Head is the log position of the newest committed event that readers of the
// log can see (below the transaction watermark) and when it was recorded;
// Start and the zero time when the log is empty. Compared with a relay's or a
// projector's checkpoint it tells how far behind the follower is.
func (s *Store) Head(ctx context.Context) (Position, time.Time, error) {
	var (
		p    Position
		txid string
		at   time.Time
	)
	err := s.inScope(ctx, crossTenantRead, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT global_position, transaction_id::text AS txid_text, recorded_at FROM events
			WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
			ORDER BY transaction_id DESC, global_position DESC LIMIT 1`).Scan(&p.GlobalPosition, &txid, &at)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Start, time.Time{}, nil
	}
	if err != nil {
		return Position{}, time.Time{}, fmt.Errorf("head: %w", err)
	}
	if p.TransactionID, err = strconv.ParseUint(txid, 10, 64); err != nil {
		return Position{}, time.Time{}, fmt.Errorf("head: transaction id %q: %w", txid, err)
	}
	return p, at.UTC(), nil
}
