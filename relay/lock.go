package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lockKey is the session-level advisory lock only the active relay holds.
// Advisory locks are per database, so each AccountDB database has one relay.
const lockKey int64 = 0x4163_6344_4272_6c79 // "AccDBrly"

// checkpointName is the relay's row in checkpoints.
const checkpointName = "relay"

// publisherLock is a connection taken out of the pool for good: the advisory
// lock lives exactly as long as its session, so the connection must never go
// back to the pool while it holds the lock. Closing it releases the lock.
type publisherLock struct {
	conn *pgx.Conn
}

// tryPublisherLock takes the relay lock on a connection of pool if it is
// free. It returns nil, nil when another session holds it.
func tryPublisherLock(ctx context.Context, pool *pgxpool.Pool) (*publisherLock, error) {
	pc, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("relay lock: %w", err)
	}
	var held bool
	if err := pc.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey).Scan(&held); err != nil {
		// The lock may have been granted before the error: end the session so
		// that it cannot go back to the pool holding it.
		_ = pc.Conn().Close(context.Background())
		pc.Release()
		return nil, fmt.Errorf("relay lock: %w", err)
	}
	if !held {
		pc.Release()
		return nil, nil
	}
	// The checkpoint is a hint, not a record: align moves it to the stream's
	// last message whenever the two differ, so a checkpoint write lost in a
	// crash costs nothing. Its commits need not wait for the WAL flush, which
	// on a busy database took 5–8 ms of every publishing cycle (issue 16).
	// The setting is the session's, and this session never returns to the pool.
	if _, err := pc.Exec(ctx, `SET synchronous_commit = off`); err != nil {
		_ = pc.Conn().Close(context.Background())
		pc.Release()
		return nil, fmt.Errorf("relay lock: %w", err)
	}
	return &publisherLock{conn: pc.Hijack()}, nil
}

// alive checks that the session holding the lock is still there; if it is,
// nobody else can hold the lock.
func (l *publisherLock) alive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := l.conn.Ping(ctx); err != nil {
		return fmt.Errorf("relay lock connection: %w", err)
	}
	return nil
}

func (l *publisherLock) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Unlock before closing: the server ends a closed session (and frees its
	// locks) asynchronously, so without it another process could still see
	// the lock held right after the relay stopped. If the unlock fails the
	// close still frees the lock, a moment later.
	_, _ = l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockKey)
	_ = l.conn.Close(ctx)
}

// loadCheckpoint reads the relay's checkpoint, creating the row at Start.
// Checkpoint reads and writes go through the lock's own session: one that
// succeeds proves the lock was still held when it ran.
func (l *publisherLock) loadCheckpoint(ctx context.Context) (eventlog.Position, error) {
	var tx, gp int64
	err := l.conn.QueryRow(ctx, `WITH ins AS (
			INSERT INTO checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING
			RETURNING transaction_id, global_position)
		SELECT transaction_id, global_position FROM ins
		UNION ALL
		SELECT transaction_id, global_position FROM checkpoints WHERE name = $1`, checkpointName).Scan(&tx, &gp)
	if err != nil {
		return eventlog.Position{}, fmt.Errorf("load relay checkpoint: %w", err)
	}
	return eventlog.Position{TransactionID: uint64(tx), GlobalPosition: gp}, nil
}

func (l *publisherLock) saveCheckpoint(ctx context.Context, p eventlog.Position) error {
	_, err := l.conn.Exec(ctx, `UPDATE checkpoints SET transaction_id = $2, global_position = $3, updated_at = now()
		WHERE name = $1`, checkpointName, int64(p.TransactionID), p.GlobalPosition)
	if err != nil {
		return fmt.Errorf("save relay checkpoint: %w", err)
	}
	return nil
}

// PublisherActive says whether a relay of another session holds the
// publisher lock, that is whether another core process runs against this
// database. pg_locks shows a bigint advisory key as its two halves, and
// every database's locks: advisory locks are per database.
func PublisherActive(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	var held bool
	err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
			AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1 AND pid <> pg_backend_pid()
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`,
		uint64(lockKey)>>32, uint64(lockKey)&0xffff_ffff).Scan(&held)
	if err != nil {
		return false, fmt.Errorf("relay lock: %w", err)
	}
	return held, nil
}
