package tenantdb

import (
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// QueueScope queues s's scope on b, for writes whose statements are all
// known before any answer (as Read does for reads). Sent on a pooled
// connection (pool.SendBatch, no BEGIN), the batch is one pipeline ended
// by a single Sync, which PostgreSQL runs as one implicit transaction: the
// scope holds for the statements queued after it, up to the next scope
// queued, and ends with the transaction; a failing statement rolls all of
// it back. Such a transaction holds its id (and, for an append, its stream
// lock) only while the server runs it, never across a round trip to the
// client: what reads the log below the oldest running append (the relay,
// eventstore.ReadAll) is not held back by the client's pace.
func QueueScope(b *pgx.Batch, s Scope) error {
	if s.TenantID == uuid.Nil && !s.CrossTenant && !s.PlatformAdmin {
		return ErrNoScope
	}
	b.Queue(setScopeSQL, s.args()...)
	return nil
}
