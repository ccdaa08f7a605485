package eventstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Store is the PostgreSQL event store. It connects as the service role, so the
// tables' row-level security applies to everything it does.
type Store struct {
	pool      *pgxpool.Pool
	metrics   *storeMetrics
	upcasters *Upcasters   // see WithUpcasters
	revealer  Revealer     // see WithRevealer
	group     *appendGroup // nil: no group commit (see WithGroupCommit)
}

// New returns a store on pool. reg may be nil (no metrics exported).
func New(pool *pgxpool.Pool, reg prometheus.Registerer) *Store {
	return &Store{pool: pool, metrics: newStoreMetrics(reg), group: newAppendGroup(groupFlushers)}
}

// Pool is the store's connection pool, for components that share it.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

var crossTenantRead = tenantdb.System()

func tenantScope(id uuid.UUID) tenantdb.Scope { return tenantdb.Tenant(id) }

func (s *Store) inScope(ctx context.Context, sc tenantdb.Scope, fn func(pgx.Tx) error) error {
	return tenantdb.ReadTx(ctx, s.pool, sc, fn)
}

const eventColumns = `global_position, transaction_id::text AS txid_text, stream_id, stream_version, event_id,
	event_type, schema_version, tenant_id, actor_id, correlation_id, causation_id, data, metadata, recorded_at`

func scanEvents(rows pgx.Rows, capacity int) ([]eventlog.Event, error) {
	defer rows.Close()
	out := make([]eventlog.Event, 0, capacity)
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// scanEvent decodes the current row of a query selecting eventColumns.
func scanEvent(rows pgx.Rows) (eventlog.Event, error) {
	var (
		e         eventlog.Event
		txid      string
		stream    string
		actor     pgtype.UUID
		causation pgtype.UUID
		// pgtype.UUID and []byte scan without the text round trip and JSON
		// validation of uuid.UUID and json.RawMessage: exports and long
		// replays decode every row.
		id, tenant, correlation pgtype.UUID
		data                    []byte
	)
	if err := rows.Scan(&e.Position.GlobalPosition, &txid, &stream, &e.StreamVersion, &id,
		&e.Type, &e.SchemaVersion, &tenant, &actor, &correlation, &causation,
		&data, &e.Metadata, &e.RecordedAt); err != nil {
		return eventlog.Event{}, fmt.Errorf("scan event: %w", err)
	}
	e.EventID, e.TenantID, e.CorrelationID, e.Data = id.Bytes, tenant.Bytes, correlation.Bytes, data
	tx, err := strconv.ParseUint(txid, 10, 64)
	if err != nil {
		return eventlog.Event{}, fmt.Errorf("scan event: transaction id %q: %w", txid, err)
	}
	e.Position.TransactionID = tx
	if e.Stream, err = eventlog.ParseStreamID(stream); err != nil {
		return eventlog.Event{}, err
	}
	e.ActorID, e.CausationID = uuid.UUID(actor.Bytes), uuid.UUID(causation.Bytes)
	e.RecordedAt = e.RecordedAt.UTC()
	return e, nil
}

// ReadStream returns up to limit events of one tenant's stream with version >=
// fromVersion, oldest first. A stream of another tenant reads as empty.
func (s *Store) ReadStream(ctx context.Context, tenant uuid.UUID, stream eventlog.StreamID, fromVersion int64, limit int) ([]eventlog.Event, error) {
	return s.ReadStreamUntil(ctx, tenantScope(tenant), stream, fromVersion, time.Time{}, limit)
}

// StreamVersion is a stream's current version for tenant, 0 if it has none.
func (s *Store) StreamVersion(ctx context.Context, tenant uuid.UUID, stream eventlog.StreamID) (int64, error) {
	var v int64
	err := s.inScope(ctx, tenantScope(tenant), func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT version FROM streams WHERE stream_id = $1`, stream.String()).Scan(&v)
		if err == pgx.ErrNoRows {
			return nil
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("stream version %s: %w", stream, err)
	}
	return v, nil
}

// ReadAll returns up to limit committed events after the given position, in
// commit order, across all tenants. It reads only below the log's watermark
// (watermark.go): every transaction that could still commit an event is then
// at or above it, so a later call can never find an event that should have
// come before one already returned. The price is that a long-running append
// holds readers back until it ends.
func (s *Store) ReadAll(ctx context.Context, after eventlog.Position, limit int) ([]eventlog.Event, error) {
	limit = clampLimit(limit)
	var out []eventlog.Event
	err := s.readBelowWatermark(ctx, crossTenantRead, func(b *pgx.Batch) {
		b.Queue(`SELECT `+eventColumns+` FROM events
			WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
			  AND `+belowWatermark+`
			ORDER BY transaction_id, global_position LIMIT $3`,
			strconv.FormatUint(after.TransactionID, 10), after.GlobalPosition, limit,
		).Query(func(rows pgx.Rows) (err error) {
			out, err = scanEvents(rows, limit)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read all: %w", err)
	}
	if out, err = s.reveal(ctx, out); err != nil {
		return nil, fmt.Errorf("read all: %w", err)
	}
	return s.upcasters.upcastAll(out)
}

// PositionOf finds the log position of the event at a global position, so a
// client's consistency token or Last-Event-ID (a global position) can be
// compared with checkpoints kept in log order.
func (s *Store) PositionOf(ctx context.Context, globalPosition int64) (eventlog.Position, error) {
	var txid string
	err := s.inScope(ctx, crossTenantRead, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT transaction_id::text AS txid_text FROM events WHERE global_position = $1`, globalPosition).Scan(&txid)
	})
	if err != nil {
		return eventlog.Position{}, fmt.Errorf("position of %d: %w", globalPosition, err)
	}
	t, err := strconv.ParseUint(txid, 10, 64)
	if err != nil {
		return eventlog.Position{}, fmt.Errorf("position of %d: %w", globalPosition, err)
	}
	return eventlog.Position{TransactionID: t, GlobalPosition: globalPosition}, nil
}

// DefaultReadLimit and MaxReadLimit bound one read.
const (
	DefaultReadLimit = 1000
	MaxReadLimit     = 10000
)

func clampLimit(n int) int {
	if n <= 0 {
		return DefaultReadLimit
	}
	return min(n, MaxReadLimit)
}
