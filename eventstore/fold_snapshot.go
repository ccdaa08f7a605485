package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5"
)

// foldFromSnapshotSQL is latestSnapshotSQL and foldSQL after it as one
// statement, so that a command's load is one round trip (issue 16: it was
// five, BEGIN, the scope, the snapshot, the events and COMMIT). One
// statement, because one snapshot of the database must answer both: as two
// statements of a READ COMMITTED pipeline, a snapshot saved between them
// would move the events' lower bound past the snapshot restored, and the
// events between the two would be skipped.
//
// The first column tells the rows apart: 0 the snapshot (at most one, its
// state in data and its CoveredUntil in recorded_at), 1 the events after it
// (or after 0 when there is none), and ORDER BY puts the snapshot first and
// the events in version order. The events are read in a lateral subquery so
// that the snapshot's version bounds their index scan.
const foldFromSnapshotSQL = `WITH snap AS MATERIALIZED (` + latestSnapshotSQL + `)
SELECT 0 AS part, stream_version, NULL::uuid, ''::text, 0, NULL::uuid, NULL::uuid, state, covered_until FROM snap
UNION ALL
SELECT 1, e.* FROM (SELECT coalesce(max(stream_version), 0) AS after FROM snap) b
CROSS JOIN LATERAL (SELECT ` + foldColumns + ` FROM events
	WHERE stream_id = $1 AND stream_version > b.after AND ($3::timestamptz IS NULL OR recorded_at <= $3)
	ORDER BY stream_version) e
ORDER BY 1, 2`

// FoldFromSnapshot is LatestSnapshot then FoldStream after it, in one
// statement under sc (one round trip, see foldFromSnapshotSQL): restore is
// called with the latest usable snapshot, if there is one, then fn with each
// event of the prefix recorded at or before until that follows it. When
// restore fails (a snapshot this code cannot read), the fold starts from the
// first event instead, in a second read, and restore's error is returned as
// the second result, for the caller to report; restore must then have left
// the aggregate untouched. It returns the version the fold started after (0:
// no snapshot used).
func (s *Store) FoldFromSnapshot(ctx context.Context, sc tenantdb.Scope, stream eventlog.StreamID, codeVersion int, until time.Time,
	restore func(Snapshot) error, fn func(eventlog.Event) error) (after int64, restoreErr, err error) {
	if err := stream.Validate(); err != nil {
		return 0, nil, err
	}
	err = tenantdb.Read(ctx, s.pool, sc, func(b *pgx.Batch) {
		b.Queue(foldFromSnapshotSQL, stream.String(), s.SnapshotStateVersion(codeVersion), timeBound(until)).Query(func(rows pgx.Rows) error {
			var f *fold
			for rows.Next() {
				var part int32
				if f == nil {
					// The first row: the snapshot, if there is one.
					var sn Snapshot
					var id, tenant, actor any
					var typ string
					var schema int32
					if err := rows.Scan(&part, &sn.StreamVersion, &id, &typ, &schema, &tenant, &actor, &sn.State, &sn.CoveredUntil); err != nil {
						return fmt.Errorf("scan snapshot: %w", err)
					}
					if part == 0 {
						sn.CoveredUntil = sn.CoveredUntil.UTC()
						if restoreErr = restore(sn); restoreErr != nil {
							return nil // refolded from the start below
						}
						after = sn.StreamVersion
						f = s.newFold(ctx, stream, after, fn)
						continue
					}
					f = s.newFold(ctx, stream, 0, fn)
				}
				if more, err := f.event(rows, &part); err != nil || !more {
					return err
				}
			}
			return rows.Err()
		})
	})
	if err == nil && restoreErr != nil {
		return 0, restoreErr, s.FoldStream(ctx, sc, stream, 0, until, fn)
	}
	if err != nil {
		return 0, restoreErr, fmt.Errorf("read stream %s: %w", stream, err)
	}
	return after, restoreErr, nil
}
