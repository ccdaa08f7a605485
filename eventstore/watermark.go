package eventstore

import (
	"context"

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

// readBelowWatermark runs, under sc and in one round trip (tenantdb.Read:
// one implicit read-only transaction, in which each statement still takes its
// own snapshot), the statements queue adds after the one that sets the
// watermark; they compare with it through belowWatermark.
func (s *Store) readBelowWatermark(ctx context.Context, sc tenantdb.Scope, queue func(b *pgx.Batch)) error {
	return tenantdb.Read(ctx, s.pool, sc, func(b *pgx.Batch) {
		b.Queue(setWatermarkSQL)
		queue(b)
	})
}

// read runs queue's statements under sc in one round trip (tenantdb.Read),
// without the watermark.
func (s *Store) read(ctx context.Context, sc tenantdb.Scope, queue func(b *pgx.Batch)) error {
	return tenantdb.Read(ctx, s.pool, sc, queue)
}
