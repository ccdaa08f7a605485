package webhooks

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Endpoints are dispatched by one replica at a time: the one holding their
// shard's session-level advisory lock. A replica takes every free shard at
// each round, so the first one up dispatches everything and the others
// stand by; when its session ends (it stopped, crashed or was killed: the
// server sees the connection close) the locks are free at once and the
// next round of another replica takes them, resuming each endpoint at its
// saved cursor. Shards, not one lock per endpoint: advisory locks live in
// the server's shared lock table, which thousands of endpoints would fill.
const shardCount = 64

// shardLockNamespace is the advisory lock namespace of webhook shards
// (first key of the two-key form), apart from the event store's (69) and
// the projectors' (80–82).
const shardLockNamespace = 83

// shardOf is the shard of endpoint id (its last bytes are random, UUIDv7
// or v4 alike).
func shardOf(id uuid.UUID) int { return int(binary.BigEndian.Uint16(id[14:]) % shardCount) }

// shards holds this replica's shard locks on one connection taken out of
// the pool for good (a session lock lives as long as its session).
type shards struct {
	pool *pgxpool.Pool
	conn *pgx.Conn
	held [shardCount]bool
}

// acquire takes the free shards and answers which this replica holds; the
// query doubles as the check that the session (and so every lock) lives.
// On an error none is held: the caller stops dispatching.
func (s *shards) acquire(ctx context.Context) ([shardCount]bool, error) {
	if s.conn == nil {
		pc, err := s.pool.Acquire(ctx)
		if err != nil {
			return s.held, fmt.Errorf("webhook shards: %w", err)
		}
		s.conn = pc.Hijack()
	}
	var mine []int32
	for i, h := range s.held {
		if h {
			mine = append(mine, int32(i))
		}
	}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rows, err := s.conn.Query(qctx, `SELECT s FROM generate_series(0, $1 - 1) s
		WHERE CASE WHEN s = ANY($2) THEN true ELSE pg_try_advisory_lock($3, s) END`, shardCount, mine, shardLockNamespace)
	var got []int32
	if err == nil {
		got, err = pgx.CollectRows(rows, pgx.RowTo[int32])
	}
	if err != nil {
		s.close() // a lock may have been granted before the error
		return s.held, fmt.Errorf("webhook shards: %w", err)
	}
	for _, i := range got {
		s.held[i] = true
	}
	return s.held, nil
}

// close ends the session, freeing every shard.
func (s *shards) close() {
	if s.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.conn.Close(ctx)
		cancel()
	}
	s.conn = nil
	s.held = [shardCount]bool{}
}
