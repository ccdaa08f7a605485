package eventstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/jackc/pgx/v5"
)

// Appends to several streams in one transaction (a VM's create request and
// its pool's allocation; a pool and its cluster), for facts that must be
// recorded together or not at all.
//
// Every stream's lock must be held from before the transaction has an id
// until it commits, or log order could disagree with that stream's versions
// (see AppendScopeSQL). LockStreamsTx takes them all up front, in one order
// (sorted by stream id) so that two such transactions cannot deadlock, and
// AppendTxLocked then appends to each.

// LockStreamsTx takes the append locks of streams for tx. It must come
// before tx's first write (ErrAppendNotFirstWrite otherwise); a lock tx
// holds already is taken again at no cost.
func (s *Store) LockStreamsTx(ctx context.Context, tx pgx.Tx, streams ...eventlog.StreamID) error {
	keys := make([]string, 0, len(streams))
	for _, st := range streams {
		keys = append(keys, st.String())
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	// One round trip: the check, then each lock in order.
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_current_xact_id_if_assigned() IS NULL`)
	for _, k := range keys {
		b.Queue(`SELECT pg_advisory_xact_lock(`+streamLockNamespace+`, hashtext($1))`, k)
	}
	br := tx.SendBatch(ctx, b)
	var unassigned bool
	err := br.QueryRow().Scan(&unassigned)
	if err == nil && !unassigned {
		err = ErrAppendNotFirstWrite
	}
	for i := 0; err == nil && i < len(keys); i++ {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("lock streams: %w", err)
	}
	return nil
}

// AppendTxLocked is AppendTx for a stream whose lock LockStreamsTx took:
// it may follow other writes of tx. It sets app.tenant_id to a.TenantID for
// the rest of the transaction. The caller must roll back on any error, and
// when the result is Replayed.
func (s *Store) AppendTxLocked(ctx context.Context, tx pgx.Tx, a Append) (AppendResult, error) {
	return s.append(ctx, tx, a, false)
}
