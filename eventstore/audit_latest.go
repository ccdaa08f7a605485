package eventstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5"
)

// AuditLatest returns the last limit events matching f (After is ignored),
// oldest first, revealed and upcast: the most recent history of a tenant or
// a stream, as the assistant sends it (docs/ASSISTANT.md). Like AuditPage it
// lists only events of transactions below the snapshot's xmin.
func (s *Store) AuditLatest(ctx context.Context, sc tenantdb.Scope, f AuditFilter, limit int) ([]eventlog.Event, error) {
	limit = clampLimit(limit)
	f.After, f.newestFirst = 0, true
	q, args := f.query(` AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())`, limit)
	var out []eventlog.Event
	err := s.inScope(ctx, sc, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		out, err = scanEvents(rows, min(limit, 256))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("audit latest: %w", err)
	}
	slices.Reverse(out)
	if out, err = s.reveal(ctx, out); err != nil {
		return nil, fmt.Errorf("audit latest: %w", err)
	}
	return s.upcasters.upcastAll(out)
}
