package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Append is one command's worth of events for one stream.
type Append struct {
	Stream   eventlog.StreamID
	TenantID uuid.UUID
	Expected ExpectedVersion
	// CommandID makes the append idempotent: a repeat returns the first result
	// and records nothing. Zero means the caller does not need that.
	CommandID uuid.UUID
	// RequestHash identifies what the command asked for (a hash of the request
	// body). A repeated CommandID with a different hash is not a replay but
	// ErrIdempotencyMismatch. Optional.
	RequestHash   []byte
	ActorID       uuid.UUID
	CorrelationID uuid.UUID
	CausationID   uuid.UUID
	Metadata      eventlog.Metadata
	Events        []NewEvent
}

// NewEvent is an event proposed for appending.
type NewEvent struct {
	ID            uuid.UUID // zero: a fresh UUIDv7
	Type          string
	SchemaVersion int // zero: 1
	Data          any // marshalled to JSON; json.RawMessage passes through
	CausationID   uuid.UUID
}

// AppendResult says where the events landed. Replayed is true when the command
// id had been seen: the result is the original one and nothing was written.
type AppendResult struct {
	Stream       eventlog.StreamID
	FirstVersion int64
	LastVersion  int64
	LastPosition int64
	Replayed     bool
}

// Prepared is one event of an append as it will be written: its id,
// schema version and causation defaulted, its data marshalled and checked.
type Prepared struct {
	ID            uuid.UUID
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	CausationID   uuid.UUID
}

var eventTypePattern = eventlog.TypePattern

// Prepare checks a (stream, expected version, events, sizes) and returns its
// events as they will be written; it gives a a fresh correlation id if it has
// none. Every store implementation validates appends with it, so that they
// refuse the same input with the same errors.
func (a *Append) Prepare() ([]Prepared, error) {
	if err := a.Stream.Validate(); err != nil {
		return nil, err
	}
	if err := a.Expected.validate(); err != nil {
		return nil, err
	}
	if len(a.Events) == 0 {
		return nil, ErrNoEvents
	}
	if len(a.Events) > MaxEventsPerAppend {
		return nil, fmt.Errorf("%w: %d events in one append, at most %d", ErrInvalidEvent, len(a.Events), MaxEventsPerAppend)
	}
	if a.CorrelationID == uuid.Nil {
		a.CorrelationID = uuid.Must(uuid.NewV7())
	}
	out := make([]Prepared, 0, len(a.Events))
	for i, e := range a.Events {
		if !eventTypePattern.MatchString(e.Type) {
			return nil, fmt.Errorf("%w: event %d: type %q must match %s", ErrInvalidEvent, i, eventlog.Excerpt(e.Type), eventTypePattern)
		}
		if e.SchemaVersion < 0 {
			return nil, fmt.Errorf("%w: event %d: negative schema version", ErrInvalidEvent, i)
		}
		raw, err := marshalData(e.Data)
		if err != nil {
			return nil, fmt.Errorf("%w: event %d: %v", ErrInvalidEvent, i, err)
		}
		if len(raw) > MaxEventDataBytes {
			return nil, fmt.Errorf("%w: event %d is %d bytes, at most %d", ErrEventTooLarge, i, len(raw), MaxEventDataBytes)
		}
		p := Prepared{ID: e.ID, Type: e.Type, SchemaVersion: e.SchemaVersion, Data: raw, CausationID: e.CausationID}
		if p.ID == uuid.Nil {
			p.ID = uuid.Must(uuid.NewV7())
		}
		if p.SchemaVersion == 0 {
			p.SchemaVersion = 1
		}
		if p.CausationID == uuid.Nil {
			p.CausationID = a.CausationID
		}
		out = append(out, p)
	}
	return out, nil
}

// prepared holds an append's columns as the arrays the insert unnests.
type prepared struct {
	ids       []uuid.UUID
	types     []string
	schemas   []int32
	data      []string
	causation []pgtype.UUID
	metadata  []byte
}

func (a *Append) prepare() (prepared, error) {
	var p prepared
	events, err := a.Prepare()
	if err != nil {
		return p, err
	}
	for _, e := range events {
		p.ids = append(p.ids, e.ID)
		p.types = append(p.types, e.Type)
		p.schemas = append(p.schemas, int32(e.SchemaVersion))
		p.data = append(p.data, string(e.Data))
		p.causation = append(p.causation, nullUUID(e.CausationID))
	}
	md, err := json.Marshal(a.Metadata)
	if err != nil {
		return p, fmt.Errorf("%w: metadata: %v", ErrInvalidEvent, err)
	}
	p.metadata = md
	return p, nil
}

func marshalData(v any) ([]byte, error) {
	switch d := v.(type) {
	case nil:
		return []byte("{}"), nil
	case json.RawMessage:
		if !json.Valid(d) {
			return nil, errors.New("data is not valid JSON")
		}
		return d, nil
	case []byte:
		if !json.Valid(d) {
			return nil, errors.New("data is not valid JSON")
		}
		return d, nil
	}
	return json.Marshal(v)
}

func nullUUID(id uuid.UUID) pgtype.UUID {
	return pgtype.UUID{Bytes: id, Valid: id != uuid.Nil}
}

// The stream row is the concurrency guard: each form of expected version is one
// statement that advances it only if the expectation holds, returning the
// version before the append. No row back means the expectation failed, and the
// events and command insert below select from it, so they insert nothing.
//
// The updates find the row by its primary key only: the tenant, type and
// version checks are written with IS NOT DISTINCT FROM (the same test on
// these NOT NULL columns), which no index can answer. Written as equalities
// they matched streams_tenant_type too, and on a table without statistics
// (a new deployment, or autovacuum off) the planner costed both indexes at
// one row and took that one, reading every stream of the tenant and type
// to update one: 3,200 index entries and 2.9 ms for a tenant of 3,200 VMs
// (issue 16; docs/BENCHMARKS.md, "Issue 16: the append statement").
var streamGuards = map[expectedKind]string{
	kindAny: `INSERT INTO streams (stream_id, stream_type, tenant_id, version) VALUES ($1, $2, $3, $4)
		ON CONFLICT (stream_id) DO UPDATE SET version = streams.version + EXCLUDED.version, updated_at = now()
		WHERE streams.tenant_id = EXCLUDED.tenant_id AND streams.stream_type = EXCLUDED.stream_type
		RETURNING version - $4 AS base`,
	kindNoStream: `INSERT INTO streams (stream_id, stream_type, tenant_id, version) VALUES ($1, $2, $3, $4)
		ON CONFLICT (stream_id) DO NOTHING
		RETURNING version - $4 AS base`,
	kindExists: `UPDATE streams SET version = version + $4, updated_at = now()
		WHERE stream_id = $1 AND (tenant_id, stream_type) IS NOT DISTINCT FROM ($3::uuid, $2::text)
		RETURNING version - $4 AS base`,
	kindExact: `UPDATE streams SET version = version + $4, updated_at = now()
		WHERE stream_id = $1 AND (tenant_id, stream_type, version) IS NOT DISTINCT FROM ($3::uuid, $2::text, $5::bigint)
		RETURNING version - $4 AS base`,
}

const appendTail = `,
e AS (
	INSERT INTO events (stream_id, stream_type, stream_version, event_id, event_type, schema_version,
	                    tenant_id, actor_id, correlation_id, causation_id, data, metadata)
	SELECT $1, $2, s.base + x.ord, x.id, x.typ, x.sv, $3, $6, $7, x.cause, x.data::jsonb, $8
	FROM s, unnest($9::uuid[], $10::text[], $11::int[], $12::text[], $13::uuid[])
	        WITH ORDINALITY AS x(id, typ, sv, data, cause, ord)
	ORDER BY x.ord
	RETURNING global_position, stream_version
),
c AS (
	INSERT INTO commands (command_id, tenant_id, stream_id, first_version, last_version, last_position, request_hash)
	SELECT $14, $3, $1, min(stream_version), max(stream_version), max(global_position), $15
	FROM e WHERE $14::uuid IS NOT NULL HAVING count(*) > 0
)
SELECT coalesce(min(stream_version), 0), coalesce(max(stream_version), 0), coalesce(max(global_position), 0) FROM e`

// appendSQL is, per form of expected version, the whole append as one statement.
var appendSQL = func() map[expectedKind]string {
	m := make(map[expectedKind]string, len(streamGuards))
	for k, guard := range streamGuards {
		// Only the exact guard reads $5; the params line types it for the others.
		m[k] = "WITH params AS (SELECT $5::bigint AS expected_version), s AS (" + guard + ")" + appendTail
	}
	return m
}()

// AppendScopeSQL opens every append: it scopes the transaction to the tenant
// and serialises appends to one stream on a transaction-level advisory lock.
// The lock is what makes log order agree with stream versions: taking it
// assigns no transaction id, so a waiting writer gets its id only after the
// holder has committed, and (transaction_id, global_position) order then lists a
// stream's events in version order. Without it a writer can take its id, then
// wait on the stream row behind a younger transaction, and commit version n+1
// under a lower id than version n. The two-key form keeps these locks apart from
// single-key advisory locks such as the relay's.
//
// Its third column says whether the transaction is still without an id, which
// AppendTx requires (ErrAppendNotFirstWrite otherwise).
const AppendScopeSQL = `SELECT set_config('app.tenant_id', $1, true),
	pg_advisory_xact_lock(` + streamLockNamespace + `, hashtext($2)),
	pg_current_xact_id_if_assigned() IS NULL`

// streamLockNamespace is the first key of stream advisory locks ('E'vents).
const streamLockNamespace = "69"

// AppendSQL is the append statement for an expected version; exported for the
// pgbench comparison in the benchmarks, which must run exactly this SQL
// (after AppendScopeSQL, in the same pipeline).
func AppendSQL(e ExpectedVersion) string { return appendSQL[e.kind] }

// Append records a's events in one short transaction: scope, stream guard,
// events and command id all travel in one pipeline with one Sync, which
// PostgreSQL runs as one implicit transaction. Concurrent Appends share
// transactions (group commit, append_group.go) unless WithGroupCommit(0)
// turned that off; each keeps every guarantee of a lone append.
func (s *Store) Append(ctx context.Context, a Append) (AppendResult, error) {
	if s.group != nil {
		return s.appendGrouped(ctx, a)
	}
	return s.appendAlone(ctx, a)
}

// AppendTx records a's events inside the caller's transaction, so that a
// command can commit rows outside the event store (a uniqueness reservation, a
// password hash that must never be in an event) atomically with its events.
//
// It must be the transaction's first write: the stream lock has to be taken
// before the transaction has an id, or log order could disagree with stream
// versions (see AppendScopeSQL). A transaction that has written already gets
// ErrAppendNotFirstWrite. AppendTx sets app.tenant_id to a.TenantID for the
// rest of the transaction. On any error, and when the result is Replayed (the
// command had already been recorded), the caller must roll back.
func (s *Store) AppendTx(ctx context.Context, tx pgx.Tx, a Append) (AppendResult, error) {
	return s.append(ctx, tx, a, true)
}

// batchSender is a pooled connection or a transaction.
type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// append runs a; firstWrite requires it to be the transaction's first
// write (every caller but AppendTxLocked, whose locks were taken before).
func (s *Store) append(ctx context.Context, db batchSender, a Append, mustBeFirst bool) (AppendResult, error) {
	start := time.Now()
	p, err := a.prepare()
	if err != nil {
		return AppendResult{}, err
	}
	b := &pgx.Batch{}
	b.Queue(AppendScopeSQL, a.TenantID.String(), a.Stream.String())
	queueAppend(b, a, p)

	res := AppendResult{Stream: a.Stream}
	var firstWrite bool
	br := db.SendBatch(ctx, b)
	err = func() error {
		var tenantSetting string
		if err := br.QueryRow().Scan(&tenantSetting, nil, &firstWrite); err != nil {
			return err
		}
		if mustBeFirst && !firstWrite {
			return ErrAppendNotFirstWrite
		}
		return br.QueryRow().Scan(&res.FirstVersion, &res.LastVersion, &res.LastPosition)
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, ErrAppendNotFirstWrite) {
		return AppendResult{}, fmt.Errorf("append to %s: %w", a.Stream, err)
	}
	if err != nil {
		return s.appendFailed(ctx, a, err)
	}
	if res.LastPosition == 0 {
		return s.appendRejected(ctx, a)
	}
	s.metrics.observeAppend(time.Since(start), len(p.ids))
	return res, nil
}

// queueAppend queues a's append statement, p being a's prepared events.
func queueAppend(b *pgx.Batch, a Append, p prepared) {
	exactVersion := pgtype.Int8{}
	if v, ok := a.Expected.Version(); ok {
		exactVersion = pgtype.Int8{Int64: v, Valid: true}
	}
	b.Queue(appendSQL[a.Expected.kind],
		a.Stream.String(), a.Stream.Type, a.TenantID, int64(len(p.ids)), exactVersion,
		nullUUID(a.ActorID), a.CorrelationID, p.metadata,
		p.ids, p.types, p.schemas, p.data, p.causation, nullUUID(a.CommandID), a.RequestHash)
}

// appendFailed translates a database error; a repeated command id is not an
// error but a replay of the first result.
func (s *Store) appendFailed(ctx context.Context, a Append, err error) (AppendResult, error) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505" && pgErr.ConstraintName == "commands_pkey":
			if res, found, lerr := s.commandResult(ctx, a); lerr != nil {
				return AppendResult{}, lerr
			} else if found {
				return res, nil
			}
		case pgErr.Code == "23505" && pgErr.ConstraintName == "events_event_id_key":
			return AppendResult{}, fmt.Errorf("%w: %s", ErrDuplicateEvent, pgErr.Detail)
		case pgErr.Code == "23505" && (pgErr.ConstraintName == "streams_pkey" || pgErr.ConstraintName == "events_stream_version_key"):
			return s.appendRejected(ctx, a)
		case pgErr.Code == "42501":
			// RLS refused the stream row: it exists under another tenant.
			return AppendResult{}, fmt.Errorf("append to %s: %w", a.Stream, ErrTenantMismatch)
		}
	}
	return AppendResult{}, fmt.Errorf("append to %s: %w", a.Stream, err)
}

// appendRejected explains why the stream guard let nothing through: the command
// was already recorded, the stream is another tenant's, or a version conflict.
func (s *Store) appendRejected(ctx context.Context, a Append) (AppendResult, error) {
	if res, found, err := s.commandResult(ctx, a); err != nil {
		return AppendResult{}, err
	} else if found {
		return res, nil
	}
	var (
		tenant      uuid.UUID
		streamType  string
		actual      int64
		streamFound = true
	)
	err := s.inScope(ctx, crossTenantRead, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT tenant_id, stream_type, version FROM streams WHERE stream_id = $1`,
			a.Stream.String()).Scan(&tenant, &streamType, &actual)
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		streamFound = false
	case err != nil:
		return AppendResult{}, fmt.Errorf("append to %s: %w", a.Stream, err)
	}
	if streamFound && (tenant != a.TenantID || streamType != a.Stream.Type) {
		return AppendResult{}, fmt.Errorf("append to %s: %w", a.Stream, ErrTenantMismatch)
	}
	s.metrics.conflicts.Inc()
	return AppendResult{}, &ConflictError{Stream: a.Stream, Expected: a.Expected, Actual: actual}
}

func (s *Store) commandResult(ctx context.Context, a Append) (AppendResult, bool, error) {
	if a.CommandID == uuid.Nil {
		return AppendResult{}, false, nil
	}
	return s.lookupCommand(ctx, tenantScope(a.TenantID), a.CommandID, a.RequestHash)
}
