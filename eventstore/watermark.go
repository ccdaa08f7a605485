package eventstore

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5"
)

// The log's watermark (migration 00051, events_watermark): readers of the
// log in commit order read only events whose transaction id is below it, so
// that a later read can never find an event belonging before one already
// returned. It waits only for transactions that can still append (they hold
// an append lock from before they have an id, see AppendScopeSQL), not for
// every transaction in the cluster that holds an id, as the snapshot's xmin
// did: projector batches and other read-model writes no longer hold the
// relay back.
//
// The function's answer holds only for a snapshot taken after it returns, so
// it is computed in one statement, kept in the transaction's
// app.events_watermark, and compared in the next statement of the same
// round trip (belowWatermark), which in READ COMMITTED takes a snapshot of
// its own.
const setWatermarkSQL = `SELECT set_config('app.events_watermark', events_watermark()::text, true)`

// belowWatermark is the predicate of a statement that follows setWatermarkSQL
// in the same transaction.
const belowWatermark = `transaction_id < current_setting('app.events_watermark')::xid8`

// readBelowWatermark sets the watermark and runs sql (which uses
// belowWatermark) across tenants, in one round trip (tenantdb.Read: one
// implicit read-only transaction, in which each statement still takes its
// own snapshot); rows are handed to scan, which must read them all.
func (s *Store) readBelowWatermark(ctx context.Context, scan func(pgx.Rows) error, sql string, args ...any) error {
	err := tenantdb.Read(ctx, s.pool, crossTenantRead, func(b *pgx.Batch) {
		b.Queue(setWatermarkSQL)
		b.Queue(sql, args...).Query(scan)
	})
	if err != nil {
		return fmt.Errorf("below the watermark: %w", err)
	}
	return nil
}
