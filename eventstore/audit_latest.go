package eventstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/tenantdb"
)

// AuditLatest returns the last limit events matching f (After is ignored),
// oldest first, revealed and upcast: the most recent history of a tenant or
// a stream, as the assistant sends it (docs/ASSISTANT.md). Unlike AuditPage
// it does not hold back events above the log's watermark: nothing pages on
// from it, and the newest events are the ones a question is about.
func (s *Store) AuditLatest(ctx context.Context, sc tenantdb.Scope, f AuditFilter, limit int) ([]eventlog.Event, error) {
	limit = clampLimit(limit)
	f.After, f.newestFirst = 0, true
	q, args := f.query(``, limit)
	out, err := s.auditQuery(ctx, s.read, sc, q, args, limit)
	if err != nil {
		return nil, fmt.Errorf("audit latest: %w", err)
	}
	slices.Reverse(out)
	return s.upcasters.upcastAll(out)
}
