package projections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// runLockNamespace is the advisory lock namespace of "this process runs the
// projector" (first key of the two-key form), apart from the apply (80) and
// rebuild (82) locks.
const runLockNamespace = "81"

// ErrLeaseLost ends a runner's term: the session holding its lock is gone.
var ErrLeaseLost = errors.New("projector lease lost")

// Leases elects, per projector, the one process of a deployment that runs
// it: several `serve` replicas each start every runner, and a runner
// consumes only while it holds its projector's session-level advisory lock.
// Two runners sharing one durable consumer would each get part of the
// messages, see the others' as gaps and hand them back to JetStream, over
// and over (issue 19 measured hundreds of gaps and 0.8 s read-your-writes);
// with the lock one applies and the others stand by, taking over as soon
// as its session ends (a process that dies closes its connection).
//
// All of a process's locks live on one connection taken out of the pool
// for good (a session lock lives exactly as long as its session), so a
// replica spends one connection on them however many projectors it runs.
// Correctness never rests on the lock: every batch still takes the apply
// lock and the checkpoint row, and the prev chain, so a brief overlap
// after a lost session costs gaps, not wrong read models.
type Leases struct {
	pool *pgxpool.Pool

	mu       sync.Mutex
	conn     *pgx.Conn       // nil: no session, no lock held
	held     map[string]bool // projector names locked on conn
	lastPing time.Time
}

// NewLeases returns the lease set of one process.
func NewLeases(pool *pgxpool.Pool) *Leases {
	return &Leases{pool: pool, held: map[string]bool{}}
}

// TryAcquire takes projector's lock if no other session holds it.
func (l *Leases) TryAcquire(ctx context.Context, projector string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[projector] {
		return true, nil
	}
	if l.conn == nil {
		pc, err := l.pool.Acquire(ctx)
		if err != nil {
			return false, fmt.Errorf("projector lease: %w", err)
		}
		l.conn, l.lastPing = pc.Hijack(), time.Now()
	}
	var got bool
	err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+runLockNamespace+`, hashtext($1))`, projector).Scan(&got)
	if err != nil {
		// The lock may have been granted before the error: end the session.
		l.dropLocked()
		return false, fmt.Errorf("projector lease: %w", err)
	}
	if got {
		l.held[projector] = true
	}
	return got, nil
}

// Check returns ErrLeaseLost unless projector's lock is still held: its
// session answers (checked at most once a second for all projectors).
func (l *Leases) Check(ctx context.Context, projector string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil || !l.held[projector] {
		return ErrLeaseLost
	}
	if time.Since(l.lastPing) < time.Second {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := l.conn.Ping(pctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.dropLocked()
		return fmt.Errorf("%w: %w", ErrLeaseLost, err)
	}
	l.lastPing = time.Now()
	return nil
}

// Release gives projector's lock up, so a standby takes over at once.
func (l *Leases) Release(projector string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil || !l.held[projector] {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock(`+runLockNamespace+`, hashtext($1))`, projector); err != nil {
		l.dropLocked()
		return
	}
	delete(l.held, projector)
}

// Close ends the session, releasing every lock.
func (l *Leases) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropLocked()
}

func (l *Leases) dropLocked() {
	if l.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = l.conn.Close(ctx)
		cancel()
	}
	l.conn = nil
	clear(l.held)
}
