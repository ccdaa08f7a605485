package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5"
)

// ReadStreamUntil is ReadStream under an explicit scope (a tenant's, or
// tenantdb.System() for operators' tools), keeping only events recorded at or
// before until (zero: no bound). Because recorded_at is the appending
// transaction's start, versions and times need not agree: callers that
// rebuild state must stop at the first gap in versions, so that what they
// rebuild is a prefix of the stream.
func (s *Store) ReadStreamUntil(ctx context.Context, sc tenantdb.Scope, stream StreamID, fromVersion int64, until time.Time, limit int) ([]Event, error) {
	if err := stream.Validate(); err != nil {
		return nil, err
	}
	limit = clampLimit(limit)
	bound := any(nil)
	if !until.IsZero() {
		bound = until
	}
	var out []Event
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
	return s.upcasters.upcastAll(out)
}
