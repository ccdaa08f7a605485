package webhooks

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// cursor is where an endpoint's delivery has got to (webhook_cursors):
// every message of the stream up to seq, in the endpoint's generation, is
// delivered or not for it.
type cursor struct {
	webhook    uuid.UUID
	generation int
	seq        uint64
}

// Cursors are the saved positions of the endpoints ids; an endpoint
// without one (never saved, or saved for another generation than asked)
// is absent.
func (s *Store) Cursors(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]cursor, error) {
	rows, err := s.pool.Query(ctx, `SELECT webhook_id, generation, stream_seq FROM webhook_cursors WHERE webhook_id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	cs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (cursor, error) {
		var c cursor
		var seq int64
		err := row.Scan(&c.webhook, &c.generation, &seq)
		c.seq = uint64(seq)
		return c, err
	})
	out := make(map[uuid.UUID]cursor, len(cs))
	for _, c := range cs {
		out[c.webhook] = c
	}
	return out, err
}

// SaveCursors records positions, in one statement. A position never goes
// back within a generation (two replicas briefly dispatching one endpoint
// after a fail-over each save only what they delivered), and a later
// generation (a replay) replaces an earlier one, never the reverse.
func (s *Store) SaveCursors(ctx context.Context, cs []cursor) error {
	if len(cs) == 0 {
		return nil
	}
	ids, gens, seqs := make([]uuid.UUID, len(cs)), make([]int32, len(cs)), make([]int64, len(cs))
	for i, c := range cs {
		ids[i], gens[i], seqs[i] = c.webhook, int32(c.generation), int64(c.seq)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO webhook_cursors AS c (webhook_id, generation, stream_seq)
		SELECT * FROM unnest($1::uuid[], $2::int[], $3::bigint[])
		ON CONFLICT (webhook_id) DO UPDATE SET
			stream_seq = CASE WHEN excluded.generation > c.generation THEN excluded.stream_seq
				ELSE greatest(c.stream_seq, excluded.stream_seq) END,
			generation = excluded.generation, updated_at = now()
		WHERE excluded.generation >= c.generation`, ids, gens, seqs)
	return err
}

// DropCursors deletes the positions of endpoints that no longer exist.
func (s *Store) DropCursors(ctx context.Context, existing []uuid.UUID) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM webhook_cursors WHERE webhook_id <> ALL($1) AND updated_at < now() - interval '1 hour'`, existing)
	return err
}
