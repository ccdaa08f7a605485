package eventstore

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// VerifyFilter narrows a chain verification. Zero fields check everything the
// scope can see.
type VerifyFilter struct {
	// TenantID runs the check in that tenant's scope (row-level security shows
	// its streams only); uuid.Nil runs it under the cross-tenant system scope.
	TenantID uuid.UUID
	// Stream checks one stream; the zero StreamID checks them all.
	Stream eventlog.StreamID
}

// BreakReason says how a chain is broken.
type BreakReason string

const (
	// ContentChanged: the event's stored hash is not the hash of its content
	// and link, so the event was altered after it was recorded.
	ContentChanged BreakReason = "content_changed"
	// LinkBroken: the event's prev_hash is not the stored hash of the event
	// before it, so that earlier event was replaced (content and hash both
	// rewritten) or this link was edited.
	LinkBroken BreakReason = "link_broken"
	// Gap: versions are missing, so events were deleted. Version is the first
	// missing one; Position is the event after the gap (0 when the gap is the
	// stream's tail, which the stream's recorded version reveals).
	Gap BreakReason = "gap"
)

// BrokenLink is the first break found in one stream.
type BrokenLink struct {
	Stream   string // as stored: a tampered row need not hold a valid id
	TenantID uuid.UUID
	Version  int64
	Position int64
	Reason   BreakReason
	// Expected is what the chain says the checked value should be (the
	// recomputed hash, or the previous event's stored hash); Stored is what
	// the row holds (its hash, or its prev_hash). Nil when there is no row.
	Expected, Stored []byte
}

// VerifyReport is the outcome of VerifyChains.
type VerifyReport struct {
	StreamsChecked int64
	EventsChecked  int64
	Broken         []BrokenLink // by position of the break, at most one per stream
}

// OK reports whether every chain checked is intact.
func (r VerifyReport) OK() bool { return len(r.Broken) == 0 }

// verifyChainsSQL recomputes every link with event_canonical, the function the
// insert trigger hashes with, and keeps the first break of each stream. $1 is
// the stream id or NULL, $2 the tenant or NULL. Checks run in order: a gap
// explains a mismatched prev_hash, and a link is judged before the content
// that hashes it.
const verifyChainsSQL = `
WITH chain AS (
	SELECT e.stream_id, e.tenant_id, e.stream_version, e.global_position, e.hash, e.prev_hash,
	       sha256(e.prev_hash || event_canonical(e.event_id, e.stream_id, e.stream_version, e.event_type,
	           e.schema_version, e.tenant_id, e.actor_id, e.correlation_id, e.causation_id,
	           e.data, e.metadata, e.recorded_at)) AS computed,
	       coalesce(lag(e.hash) OVER w, event_chain_origin()) AS link,
	       coalesce(lag(e.stream_version) OVER w, 0) AS prev_version
	FROM events e
	WHERE ($1::text IS NULL OR e.stream_id = $1) AND ($2::uuid IS NULL OR e.tenant_id = $2)
	WINDOW w AS (PARTITION BY e.stream_id ORDER BY e.stream_version)
), judged AS (
	SELECT stream_id, tenant_id, global_position,
	       CASE WHEN stream_version <> prev_version + 1 THEN prev_version + 1 ELSE stream_version END AS version,
	       CASE WHEN stream_version <> prev_version + 1 THEN 'gap'
	            WHEN prev_hash IS DISTINCT FROM link THEN 'link_broken'
	            WHEN hash IS DISTINCT FROM computed THEN 'content_changed' END AS reason,
	       CASE WHEN stream_version = prev_version + 1 AND prev_hash IS NOT DISTINCT FROM link THEN computed ELSE link END AS expected,
	       CASE WHEN stream_version = prev_version + 1 AND prev_hash IS NOT DISTINCT FROM link THEN hash ELSE prev_hash END AS stored
	FROM chain
), firsts AS (
	SELECT DISTINCT ON (stream_id) stream_id, tenant_id, version, global_position, reason, expected, stored
	FROM judged WHERE reason IS NOT NULL
	ORDER BY stream_id, version
), tails AS (
	SELECT s.stream_id, s.tenant_id, coalesce(last.version, 0) + 1 AS version, 0::bigint AS global_position,
	       'gap' AS reason, NULL::bytea AS expected, NULL::bytea AS stored
	FROM streams s
	LEFT JOIN (SELECT stream_id, max(stream_version) AS version FROM chain GROUP BY stream_id) last USING (stream_id)
	WHERE ($1::text IS NULL OR s.stream_id = $1) AND ($2::uuid IS NULL OR s.tenant_id = $2)
	  AND s.version > coalesce(last.version, 0)
	  AND NOT EXISTS (SELECT 1 FROM firsts f WHERE f.stream_id = s.stream_id)
)
SELECT * FROM (SELECT * FROM firsts UNION ALL SELECT * FROM tails) b
ORDER BY global_position = 0, global_position, stream_id`

const verifyCountsSQL = `
SELECT (SELECT count(*) FROM events
        WHERE ($1::text IS NULL OR stream_id = $1) AND ($2::uuid IS NULL OR tenant_id = $2)),
       (SELECT count(*) FROM (
            SELECT stream_id FROM events
            WHERE ($1::text IS NULL OR stream_id = $1) AND ($2::uuid IS NULL OR tenant_id = $2)
            UNION
            SELECT stream_id FROM streams
            WHERE ($1::text IS NULL OR stream_id = $1) AND ($2::uuid IS NULL OR tenant_id = $2)) ids)`

// auditRead runs fn in one READ ONLY, REPEATABLE READ transaction (every
// statement of fn sees the same snapshot of the log) under tenant's scope,
// or under the cross-tenant scope for uuid.Nil. Cross-tenant, the pool's
// statement timeout is lifted: a whole log takes as long as it takes. The
// audit tools (chain verification, anchors) read this way.
func (s *Store) auditRead(ctx context.Context, tenant uuid.UUID, fn func(pgx.Tx) error) error {
	scope := crossTenantRead
	if tenant != uuid.Nil {
		scope = tenantScope(tenant)
	}
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		if err := tenantdb.SetScope(ctx, tx, scope); err != nil {
			return err
		}
		if scope.CrossTenant {
			if _, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', '0', true)`); err != nil {
				return err
			}
		}
		return fn(tx)
	})
}

// VerifyChains recomputes the hash chains of the events f selects, in SQL
// with the same canonical form the insert trigger hashed, and reports the
// first broken link of each stream. Both statements read one snapshot. Under
// the system scope the pool's statement timeout is lifted: a whole log takes
// as long as it takes.
func (s *Store) VerifyChains(ctx context.Context, f VerifyFilter) (VerifyReport, error) {
	var tenant *uuid.UUID
	if f.TenantID != uuid.Nil {
		tenant = &f.TenantID
	}
	var stream *string
	if f.Stream != (eventlog.StreamID{}) {
		if err := f.Stream.Validate(); err != nil {
			return VerifyReport{}, err
		}
		id := f.Stream.String()
		stream = &id
	}
	var rep VerifyReport
	err := s.auditRead(ctx, f.TenantID, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, verifyCountsSQL, stream, tenant).Scan(&rep.EventsChecked, &rep.StreamsChecked); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, verifyChainsSQL, stream, tenant)
		if err != nil {
			return err
		}
		rep.Broken, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (BrokenLink, error) {
			var b BrokenLink
			var reason string
			err := row.Scan(&b.Stream, &b.TenantID, &b.Version, &b.Position, &reason, &b.Expected, &b.Stored)
			b.Reason = BreakReason(reason)
			return b, err
		})
		return err
	})
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verify chains: %w", err)
	}
	return rep, nil
}
