package projections

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/jackc/pgx/v5/pgxpool"
)

// checkpointChannel is the PostgreSQL notification channel on which every
// committed batch names its projector. It is how a replica that does not
// run a projector learns at once that the projector moved (read-your-writes
// across replicas), instead of polling the checkpoint.
const checkpointChannel = "accountdb_checkpoints"

// Notifier listens for checkpoint notifications on one connection of its
// own and wakes the requests waiting on a projector. One per process.
type Notifier struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	mu      sync.Mutex
	changed map[string]chan struct{} // closed when the projector moves
	up      bool                     // listening: waiters may rely on it
}

// NewNotifier returns a notifier; Run starts it.
func NewNotifier(pool *pgxpool.Pool, log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.Default()
	}
	return &Notifier{pool: pool, log: log, changed: map[string]chan struct{}{}}
}

// Run listens until ctx ends, reconnecting after a failure.
func (n *Notifier) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := n.listen(ctx)
		n.setUp(false)
		if ctx.Err() != nil {
			break
		}
		n.log.Warn("checkpoint notifications interrupted; waiters poll meanwhile", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}

func (n *Notifier) listen(ctx context.Context) error {
	pc, err := n.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack() // LISTEN is per session: never back to the pool
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = conn.Close(cctx)
		cancel()
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+checkpointChannel); err != nil {
		return err
	}
	n.setUp(true)
	for {
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		n.wake(note.Payload)
	}
}

// setUp records whether notifications flow, and wakes everyone on a change
// so that each waiter re-reads its checkpoint under the new regime.
func (n *Notifier) setUp(up bool) {
	n.mu.Lock()
	n.up = up
	for name, ch := range n.changed {
		close(ch)
		delete(n.changed, name)
	}
	n.mu.Unlock()
}

func (n *Notifier) wake(projector string) {
	n.mu.Lock()
	if ch, ok := n.changed[projector]; ok {
		close(ch)
		delete(n.changed, projector)
	}
	n.mu.Unlock()
}

// next is closed at projector's next move (or when notifications stop or
// resume); up says whether they flow now.
func (n *Notifier) next(projector string) (ch <-chan struct{}, up bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok := n.changed[projector]
	if !ok {
		c = make(chan struct{})
		n.changed[projector] = c
	}
	return c, n.up
}

// WaitFor blocks until projector's checkpoint is at or past pos, or ctx
// ends. It re-reads the checkpoint when a notification says the projector
// moved, so it answers as soon as the commit is visible on any replica; a
// slow poll covers notifications that were lost (a reconnect). A nil
// Notifier polls (WaitFor of the package).
func (n *Notifier) WaitFor(ctx context.Context, pool *pgxpool.Pool, projector string, pos eventlog.Position) error {
	if n == nil {
		return WaitFor(ctx, pool, projector, pos)
	}
	for {
		// Ask to be woken before reading: a move between the read and the
		// wait would otherwise be missed.
		moved, up := n.next(projector)
		cp, err := ReadCheckpoint(ctx, pool, projector)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("wait for %s: %w", projector, ctx.Err())
			}
			return fmt.Errorf("wait for %s: %w", projector, err)
		}
		if !cp.Position.Less(pos) {
			return nil
		}
		fallback := 250 * time.Millisecond
		if !up {
			fallback = 25 * time.Millisecond
		}
		t := time.NewTimer(fallback)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for %s to reach %d: %w", projector, pos.GlobalPosition, ctx.Err())
		case <-moved:
			t.Stop()
		case <-t.C:
		}
	}
}
