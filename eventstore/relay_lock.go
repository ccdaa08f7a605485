package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// relayLockKey is the session-level advisory lock only the active relay holds.
// Advisory locks are per database, so each AccountDB database has one relay.
const relayLockKey int64 = 0x4163_6344_4272_6c79 // "AccDBrly"

// relayCheckpointName is the relay's row in checkpoints.
const relayCheckpointName = "relay"

// relayLock is a connection taken out of the pool for good: the advisory lock
// lives exactly as long as its session, so the connection must never go back
// to the pool while it holds the lock. Closing it releases the lock.
type relayLock struct {
	conn *pgx.Conn
}

// tryLock takes the relay lock if it is free. It returns nil, nil when another
// session holds it.
func (s *Store) tryRelayLock(ctx context.Context) (*relayLock, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("relay lock: %w", err)
	}
	var held bool
	if err := pc.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, relayLockKey).Scan(&held); err != nil {
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
	return &relayLock{conn: pc.Hijack()}, nil
}

// alive checks that the session holding the lock is still there; if it is,
// nobody else can hold the lock.
func (l *relayLock) alive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := l.conn.Ping(ctx); err != nil {
		return fmt.Errorf("relay lock connection: %w", err)
	}
	return nil
}

func (l *relayLock) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = l.conn.Close(ctx)
}

// loadCheckpoint reads the relay's checkpoint, creating the row at Start.
// Checkpoint reads and writes go through the lock's own session: one that
// succeeds proves the lock was still held when it ran.
func (l *relayLock) loadCheckpoint(ctx context.Context) (Position, error) {
	var tx, gp int64
	err := l.conn.QueryRow(ctx, `WITH ins AS (
			INSERT INTO checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING
			RETURNING transaction_id, global_position)
		SELECT transaction_id, global_position FROM ins
		UNION ALL
		SELECT transaction_id, global_position FROM checkpoints WHERE name = $1`, relayCheckpointName).Scan(&tx, &gp)
	if err != nil {
		return Position{}, fmt.Errorf("load relay checkpoint: %w", err)
	}
	return Position{TransactionID: uint64(tx), GlobalPosition: gp}, nil
}

func (l *relayLock) saveCheckpoint(ctx context.Context, p Position) error {
	_, err := l.conn.Exec(ctx, `UPDATE checkpoints SET transaction_id = $2, global_position = $3, updated_at = now()
		WHERE name = $1`, relayCheckpointName, int64(p.TransactionID), p.GlobalPosition)
	if err != nil {
		return fmt.Errorf("save relay checkpoint: %w", err)
	}
	return nil
}

// eventAt looks up the id and transaction of the event at a global position;
// found is false when there is none.
func (s *Store) eventAt(ctx context.Context, globalPosition int64) (id uuid.UUID, pos Position, found bool, err error) {
	var txid string
	err = s.inScope(ctx, crossTenantRead, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT event_id, transaction_id::text AS txid_text FROM events WHERE global_position = $1`,
			globalPosition).Scan(&id, &txid)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, Position{}, false, nil
	}
	if err != nil {
		return uuid.Nil, Position{}, false, fmt.Errorf("event at %d: %w", globalPosition, err)
	}
	t, err := strconv.ParseUint(txid, 10, 64)
	if err != nil {
		return uuid.Nil, Position{}, false, fmt.Errorf("event at %d: %w", globalPosition, err)
	}
	return id, Position{TransactionID: t, GlobalPosition: globalPosition}, true, nil
}
