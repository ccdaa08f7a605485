package eventstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The audit queries live in the event store, not in projections: they read
// the events table itself (the system of record is the audit log), reuse its
// column list and row decoding, and need none of the read models the
// projectors keep.

// AuditFilter selects one tenant's events. Zero fields do not filter.
type AuditFilter struct {
	// TenantID is required. Row-level security decides what the scope may
	// see; naming the tenant in SQL as well keeps a platform administrator's
	// query (whose scope sees every tenant) to the one asked for.
	TenantID uuid.UUID
	Stream   *eventlog.StreamID
	// StreamType keeps one aggregate type (time travel over a tenant's VMs).
	StreamType string
	Types      []string
	ActorID    uuid.UUID
	// Since and Until bound recorded_at, both inclusive.
	Since, Until time.Time
	// After starts past this global position (a cursor).
	After int64

	// snapshot, when set, keeps to the events visible in this pg_snapshot
	// (text form): AuditEach's chunks all read the same set of events.
	snapshot string
	// newestFirst orders by descending global position (AuditLatest).
	newestFirst bool
}

// Matches reports whether e passes f (the tenant and every field set), the
// rule query writes as SQL; for stores that filter in memory.
func (f AuditFilter) Matches(e eventlog.Event) bool {
	switch {
	case e.TenantID != f.TenantID || e.Position.GlobalPosition <= f.After:
		return false
	case f.Stream != nil && e.Stream != *f.Stream:
		return false
	case f.StreamType != "" && e.Stream.Type != f.StreamType:
		return false
	case len(f.Types) > 0 && !slices.Contains(f.Types, e.Type):
		return false
	case f.ActorID != uuid.Nil && e.ActorID != f.ActorID:
		return false
	case !f.Since.IsZero() && e.RecordedAt.Before(f.Since):
		return false
	case !f.Until.IsZero() && e.RecordedAt.After(f.Until):
		return false
	}
	return true
}

// query is the SELECT for f, in global position order.
func (f AuditFilter) query(extra string, limit int) (string, []any) {
	var b strings.Builder
	args := []any{f.TenantID, f.After}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	b.WriteString(`SELECT ` + eventColumns + ` FROM events WHERE tenant_id = $1 AND global_position > $2`)
	if f.Stream != nil {
		b.WriteString(` AND stream_id = ` + arg(f.Stream.String()))
	}
	if f.StreamType != "" {
		b.WriteString(` AND stream_type = ` + arg(f.StreamType))
	}
	switch len(f.Types) {
	case 0:
	case 1: // a plain equality lets the (tenant_id, event_type, global_position) index give the order
		b.WriteString(` AND event_type = ` + arg(f.Types[0]))
	default:
		b.WriteString(` AND event_type = ANY(` + arg(f.Types) + `)`)
	}
	if f.ActorID != uuid.Nil {
		b.WriteString(` AND actor_id = ` + arg(f.ActorID))
	}
	if !f.Since.IsZero() {
		b.WriteString(` AND recorded_at >= ` + arg(f.Since))
	}
	if !f.Until.IsZero() {
		b.WriteString(` AND recorded_at <= ` + arg(f.Until))
	}
	if f.snapshot != "" {
		b.WriteString(` AND pg_visible_in_snapshot(transaction_id, ` + arg(f.snapshot) + `::pg_snapshot)`)
	}
	b.WriteString(extra)
	b.WriteString(` ORDER BY global_position`)
	if f.newestFirst {
		b.WriteString(` DESC`)
	}
	if limit > 0 {
		b.WriteString(` LIMIT ` + arg(limit))
	}
	return b.String(), args
}

// AuditPage returns up to limit events matching f, by global position.
//
// Pages are cut by global position, which is not commit order: an event of a
// transaction still running can take a lower position than one already
// committed. Only events of transactions below the log's watermark
// (watermark.go) are listed, so a long-running append cannot commit "behind" a
// page a client has already moved past. (A narrow window remains when a
// transaction that took its id later inserts its events earlier; AuditEach,
// one snapshot, has none.)
func (s *Store) AuditPage(ctx context.Context, sc tenantdb.Scope, f AuditFilter, limit int) ([]eventlog.Event, error) {
	limit = clampLimit(limit)
	q, args := f.query(` AND `+belowWatermark, limit)
	out, err := s.auditQuery(ctx, s.readBelowWatermark, sc, q, args, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return out, nil
}

// auditQuery runs one of AuditFilter's queries under sc through read (the
// store's read, or readBelowWatermark when the query compares with the
// watermark) and reveals the events it found (AuditPage, AuditLatest).
func (s *Store) auditQuery(ctx context.Context, read func(context.Context, tenantdb.Scope, func(*pgx.Batch)) error,
	sc tenantdb.Scope, q string, args []any, limit int) ([]eventlog.Event, error) {
	var out []eventlog.Event
	err := read(ctx, sc, func(b *pgx.Batch) {
		b.Queue(q, args...).Query(func(rows pgx.Rows) (err error) {
			out, err = scanEvents(rows, min(limit, 256))
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return s.reveal(ctx, out)
}

// Upcast brings e to its type's latest version with the store's upcasters
// (WithUpcasters). AuditEach yields events as recorded; a caller rebuilding
// state from them upcasts each first, as ReadStream would have.
func (s *Store) Upcast(e *eventlog.Event) error { return s.upcasters.Upcast(e) }
