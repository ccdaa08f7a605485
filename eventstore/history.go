package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// ReadStreamUntil is ReadStream under an explicit scope (a tenant's, or
// tenantdb.System() for operators' tools), keeping only events recorded at or
// before until (zero: no bound). Because recorded_at is the appending
// transaction's start, versions and times need not agree: callers that
// rebuild state must stop at the first gap in versions, so that what they
// rebuild is a prefix of the stream.
func (s *Store) ReadStreamUntil(ctx context.Context, sc tenantdb.Scope, stream eventlog.StreamID, fromVersion int64, until time.Time, limit int) ([]eventlog.Event, error) {
	if err := stream.Validate(); err != nil {
		return nil, err
	}
	limit = clampLimit(limit)
	bound := timeBound(until)
	var out []eventlog.Event
	err := s.inScope(ctx, sc, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+eventColumns+` FROM events
			WHERE stream_id = $1 AND stream_version >= $2 AND ($3::timestamptz IS NULL OR recorded_at <= $3)
			ORDER BY stream_version LIMIT $4`,
			stream.String(), fromVersion, bound, limit)
		if err != nil {
			return err
		}
		out, err = scanEvents(rows, min(limit, 256))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	if out, err = s.reveal(ctx, out); err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	return s.upcasters.upcastAll(out)
}

// FoldStream calls fn with the events of stream after version after (0: from
// the start) recorded at or before until (zero: no bound), in version order,
// stopping at the first gap in versions (see ReadStreamUntil): the first
// event must be version after+1. With after > 0 the caller stands for events
// 1..after itself (a snapshot); that is only right if all of them were
// recorded at or before until, or the prefix would have ended earlier (see
// Snapshot.CoveredUntil). It is one statement under sc, sent with the scope
// in one round trip (tenantdb.Read: a read-only implicit transaction).
// Events are upcast like ReadStreamUntil's but carry only Stream,
// StreamVersion, EventID, Type, SchemaVersion, TenantID, ActorID, Data and
// RecordedAt; rows are decoded as they arrive, never collected.
func (s *Store) FoldStream(ctx context.Context, sc tenantdb.Scope, stream eventlog.StreamID, after int64, until time.Time, fn func(eventlog.Event) error) error {
	if err := stream.Validate(); err != nil {
		return err
	}
	err := tenantdb.Read(ctx, s.pool, sc, func(b *pgx.Batch) {
		b.Queue(foldSQL, stream.String(), after, timeBound(until)).Query(func(rows pgx.Rows) error {
			f := s.newFold(ctx, stream, after, fn)
			for rows.Next() {
				if more, err := f.event(rows); err != nil || !more {
					return err
				}
			}
			return rows.Err()
		})
	})
	if err != nil {
		return fmt.Errorf("read stream %s: %w", stream, err)
	}
	return nil
}

// foldColumns are what rebuilding an aggregate needs: no metadata, causation
// or transaction id, so a long stream costs less to send and to decode.
const foldColumns = `stream_version, event_id, event_type, schema_version, tenant_id, actor_id, data, recorded_at`

// foldSQL is FoldStream's query: $1 the stream, $2 the version to start
// after, $3 the instant to stop at (NULL: none).
const foldSQL = `SELECT ` + foldColumns + ` FROM events
	WHERE stream_id = $1 AND stream_version > $2 AND ($3::timestamptz IS NULL OR recorded_at <= $3)
	ORDER BY stream_version`

// fold hands a stream's rows, as foldColumns, to fn one at a time.
type fold struct {
	s       *Store
	ctx     context.Context
	stream  eventlog.StreamID
	version int64 // the last version handed over (or started after)
	fn      func(eventlog.Event) error
}

func (s *Store) newFold(ctx context.Context, stream eventlog.StreamID, after int64, fn func(eventlog.Event) error) *fold {
	return &fold{s: s, ctx: ctx, stream: stream, version: after, fn: fn}
}

// event decodes the current row and calls fn with it; more is false at the
// first gap in versions, where the prefix ends. leading receives the
// columns a query selects before foldColumns (foldFromSnapshotSQL's part).
func (f *fold) event(rows pgx.Rows, leading ...any) (more bool, err error) {
	e := eventlog.Event{Stream: f.stream}
	// pgtype.UUID and []byte scan without the text round trip and
	// JSON validation of uuid.UUID and json.RawMessage.
	var id, tenant, actor pgtype.UUID
	var data []byte
	dest := append(leading, &e.StreamVersion, &id, &e.Type, &e.SchemaVersion, &tenant, &actor, &data, &e.RecordedAt)
	if err := rows.Scan(dest...); err != nil {
		return false, fmt.Errorf("scan event: %w", err)
	}
	e.EventID, e.TenantID, e.Data = id.Bytes, tenant.Bytes, data
	if e.StreamVersion != f.version+1 {
		return false, nil // a later event recorded earlier: the prefix ends here
	}
	f.version = e.StreamVersion
	e.ActorID, e.RecordedAt = uuid.UUID(actor.Bytes), e.RecordedAt.UTC()
	if f.s.revealer != nil {
		one := []eventlog.Event{e}
		if err := f.s.revealer.Reveal(f.ctx, one); err != nil {
			return false, err
		}
		e = one[0]
	}
	if err := f.s.upcasters.Upcast(&e); err != nil {
		return false, err
	}
	return true, f.fn(e)
}

// timeBound is until as a query parameter: NULL (no bound) when zero.
func timeBound(until time.Time) any {
	if until.IsZero() {
		return nil
	}
	return until
}
