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
// a stream, as the assistant sends it (docs/ASSISTANT.md). Unlike AuditPage
// it does not hold back events above the snapshot's xmin: nothing pages on
// from it, and the newest events are the ones a question is about.
func (s *Store) AuditLatest(ctx context.Context, sc tenantdb.Scope, f AuditFilter, limit int) ([]eventlog.Event, error) {
	limit = clampLimit(limit)
	f.After, f.newestFirst = 0, true
	q, args := f.query(``, limit)
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
