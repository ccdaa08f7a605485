package eventstore

import (
	"context"
	"fmt"
	"slices"
	"time"

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
	b := &pgx.Batch{}
	n := queueStreamLocks(b, streams)
	br := tx.SendBatch(ctx, b)
	err := readStreamLocks(br, n)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("lock streams: %w", cerr)
	}
	return err
}

// queueStreamLocks queues the check that the transaction has not written
// yet, then the lock of each of streams, in stream id order (one order, so
// that two such transactions cannot deadlock); it returns how many locks.
func queueStreamLocks(b *pgx.Batch, streams []eventlog.StreamID) int {
	keys := make([]string, 0, len(streams))
	for _, st := range streams {
		keys = append(keys, st.String())
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	b.Queue(`SELECT pg_current_xact_id_if_assigned() IS NULL`)
	for _, k := range keys {
		b.Queue(`SELECT pg_advisory_xact_lock(`+streamLockNamespace+`, hashtext($1))`, k)
	}
	return len(keys)
}

// readStreamLocks reads what queueStreamLocks queued.
func readStreamLocks(br pgx.BatchResults, locks int) error {
	var unassigned bool
	err := br.QueryRow().Scan(&unassigned)
	if err == nil && !unassigned {
		err = ErrAppendNotFirstWrite
	}
	for i := 0; err == nil && i < locks; i++ {
		_, err = br.Exec()
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

// BatchSender is what AppendManyTx sends its round trip on: a pgx.Tx, or a
// pooled connection inside a transaction its caller began (a group of
// creates begins its transaction in the round trip of its first reads).
type BatchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// AppendManyTx takes the lock of every stream of apps (LockStreamsTx),
// then appends each as AppendTxLocked would, all in one round trip (a group
// of commands, commands.Tables.AppendGroup: the locks and the appends took
// one round trip each). It must come before tx's first write
// (ErrAppendNotFirstWrite otherwise, and the caller rolls back what the
// round trip wrote). The results are in the appends' order. It stops at the
// first append that fails, or that turns out to be a replay (its command
// was recorded already); the results then end with that replay, and the
// caller must roll back either way.
func (s *Store) AppendManyTx(ctx context.Context, tx BatchSender, apps []Append) ([]AppendResult, error) {
	return s.AppendManyTxThen(ctx, tx, apps, Then{})
}

// Then is more of the transaction's writes, sent in the appends' round trip
// after them (a group's usage updates): Queue queues them; Read reads their
// results, and is called only when every append went through, before the
// round trip's results are closed. An error from Read is AppendManyTxThen's.
//
// Begin and ReadBegin do the same for statements before the appends (and
// before their streams' locks): a transaction's BEGIN and what it must
// hold or check before it writes. An error from ReadBegin is returned at
// once, nothing of the appends read.
type Then struct {
	Begin     func(b *pgx.Batch)
	ReadBegin func(br pgx.BatchResults) error
	Queue     func(b *pgx.Batch)
	Read      func(br pgx.BatchResults) error
}

// AppendManyTxThen is AppendManyTx with then's statements in the same
// round trip, after the appends.
func (s *Store) AppendManyTxThen(ctx context.Context, tx BatchSender, apps []Append, then Then) ([]AppendResult, error) {
	start := time.Now()
	b := &pgx.Batch{}
	streams := make([]eventlog.StreamID, len(apps))
	for i, a := range apps {
		streams[i] = a.Stream
	}
	if then.Begin != nil {
		then.Begin(b)
	}
	locks := queueStreamLocks(b, streams)
	for i := range apps {
		p, err := apps[i].prepare()
		if err != nil {
			return nil, fmt.Errorf("append to %s: %w", apps[i].Stream, err)
		}
		b.Queue(AppendScopeSQL, apps[i].TenantID.String(), apps[i].Stream.String())
		queueAppend(b, apps[i], p)
	}
	if then.Queue != nil {
		then.Queue(b)
	}
	results := make([]AppendResult, 0, len(apps))
	br := tx.SendBatch(ctx, b)
	if then.ReadBegin != nil {
		if err := then.ReadBegin(br); err != nil {
			br.Close()
			return nil, err
		}
	}
	if err := readStreamLocks(br, locks); err != nil {
		br.Close()
		return nil, err
	}
	failedAt, rejected := -1, false
	var failed error
	for i, a := range apps {
		if _, failed = br.Exec(); failed != nil {
			failedAt = i
			break
		}
		res := AppendResult{Stream: a.Stream}
		if failed = br.QueryRow().Scan(&res.FirstVersion, &res.LastVersion, &res.LastPosition); failed != nil {
			failedAt = i
			break
		}
		if res.LastPosition == 0 {
			failedAt, rejected = i, true
			break
		}
		results = append(results, res)
	}
	if failedAt < 0 && then.Read != nil {
		if err := then.Read(br); err != nil {
			br.Close()
			return results, err
		}
	}
	if cerr := br.Close(); failed == nil && !rejected && cerr != nil {
		return results, fmt.Errorf("append %d streams: %w", len(apps), cerr)
	}
	if failedAt < 0 {
		d := time.Since(start)
		for _, a := range apps {
			s.metrics.observeAppend(d, len(a.Events))
		}
		return results, nil
	}
	var (
		res AppendResult
		err error
	)
	if rejected {
		res, err = s.appendRejected(ctx, apps[failedAt])
	} else {
		res, err = s.appendFailed(ctx, apps[failedAt], failed)
	}
	if err != nil {
		return results, err
	}
	return append(results, res), nil
}
