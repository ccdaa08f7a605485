package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Group commit tests form a group deterministically: with one flusher, a
// first append waits on a stream lock an administrator's transaction holds,
// the appends under test queue behind it (QueuedAppends says when they all
// have), and releasing the lock lets the flusher take them as one group.

// holdStreamLock takes st's append lock in a transaction of its own; release
// ends it. The transaction also takes an id, returned, so that tests can
// compare log order with it.
func holdStreamLock(t *testing.T, db *pgtest.DB, st eventlog.StreamID) (xid uint64, release func()) {
	t.Helper()
	ctx := context.Background()
	conn := db.AdminConn(t)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `SELECT pg_advisory_xact_lock(69, hashtext($1)), pg_current_xact_id()::text::bigint`,
		st.String()).Scan(nil, &xid); err != nil {
		t.Fatal(err)
	}
	return xid, func() {
		if err := tx.Commit(ctx); err != nil {
			t.Error(err)
		}
	}
}

// waitFor polls cond until it holds, failing the test after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitingOnLock reports whether a backend of db waits for an advisory lock.
func waitingOnLock(t *testing.T, db *pgtest.DB) func() bool {
	conn := db.AdminConn(t)
	return func() bool {
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
}

type outcome struct {
	res eventstore.AppendResult
	err error
}

// startBlockedGroup makes s's only flusher wait on a lock and returns a
// function that queues appends behind it and waits until they all queue.
func startBlockedGroup(t *testing.T, s *eventstore.Store, db *pgtest.DB, tenant uuid.UUID) (queue func(...eventstore.Append) []chan outcome, release func()) {
	t.Helper()
	ctx := context.Background()
	blocker := stream(t)
	_, release = holdStreamLock(t, db, blocker)
	leader := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, eventstore.Append{Stream: blocker, TenantID: tenant, Expected: eventstore.Any(), Events: oneEvent("leader_happened", nil)})
		leader <- err
	}()
	waitFor(t, "the first append waits on the lock", waitingOnLock(t, db))
	t.Cleanup(func() {
		if err := <-leader; err != nil {
			t.Errorf("the first append: %v", err)
		}
	})
	queue = func(as ...eventstore.Append) []chan outcome {
		outs := make([]chan outcome, len(as))
		for i, a := range as {
			outs[i] = make(chan outcome, 1)
			go func() {
				res, err := s.Append(ctx, a)
				outs[i] <- outcome{res, err}
			}()
			// One at a time, so that the group holds them in this order.
			waitFor(t, "the append has queued", func() bool { return eventstore.QueuedAppends(s) == i+1 })
		}
		return outs
	}
	return queue, release
}

func transactionsOf(t *testing.T, db *pgtest.DB, streams ...eventlog.StreamID) []uint64 {
	t.Helper()
	ids := make([]string, len(streams))
	for i, st := range streams {
		ids[i] = st.String()
	}
	rows, err := db.AdminConn(t).Query(context.Background(),
		`SELECT DISTINCT transaction_id::text::bigint FROM events WHERE stream_id = ANY($1) ORDER BY 1`, ids)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[uint64])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func verifyChains(t *testing.T, s *eventstore.Store) {
	t.Helper()
	rep, err := s.VerifyChains(context.Background(), eventstore.VerifyFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("broken chains: %+v", rep.Broken)
	}
}

// TestGroupCommitSharesOneTransaction: queued appends commit in one
// transaction, each with its own versions and command row, and a failed
// expected version in the group fails that append alone.
func TestGroupCommitSharesOneTransaction(t *testing.T) {
	s, db := newStore(t)
	s.WithGroupCommit(1)
	tenant := uuid.New()
	ctx := context.Background()

	existing := stream(t)
	if _, err := s.Append(ctx, eventstore.Append{Stream: existing, TenantID: tenant, Expected: eventstore.NoStream(), Events: oneEvent("a_happened", nil)}); err != nil {
		t.Fatal(err)
	}
	queue, release := startBlockedGroup(t, s, db, tenant)
	good := []eventlog.StreamID{stream(t), stream(t), existing}
	var as []eventstore.Append
	for _, st := range good {
		as = append(as, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.Any(), CommandID: uuid.New(),
			Events: []eventstore.NewEvent{{Type: "b_happened"}, {Type: "c_happened"}}})
	}
	conflicting := eventstore.Append{Stream: existing, TenantID: tenant, Expected: eventstore.Exactly(7), Events: oneEvent("d_happened", nil)}
	outs := queue(append(as, conflicting)...)
	release()

	for i, st := range good {
		o := <-outs[i]
		if o.err != nil {
			t.Fatalf("append %d: %v", i, o.err)
		}
		wantFirst := int64(1)
		if st == existing {
			wantFirst = 2
		}
		if o.res.FirstVersion != wantFirst || o.res.LastVersion != wantFirst+1 || o.res.Replayed {
			t.Errorf("append %d: %+v, want versions %d–%d", i, o.res, wantFirst, wantFirst+1)
		}
		if r, found, err := s.RecordedCommand(ctx, as[i].CommandID, nil); err != nil || !found || r.LastPosition != o.res.LastPosition {
			t.Errorf("append %d: command row %+v found=%v err=%v", i, r, found, err)
		}
	}
	var conflict *eventstore.ConflictError
	if o := <-outs[len(good)]; !errors.As(o.err, &conflict) || conflict.Actual != 3 {
		t.Errorf("conflicting append: %v, want a conflict at version 3", o.err)
	}
	if txs := transactionsOf(t, db, good[:2]...); len(txs) != 1 {
		t.Errorf("the group's new streams were written by transactions %v, want one", txs)
	}
	verifyChains(t, s)
}

// TestGroupCommitFallsBackOnError: a repeated command id in a group aborts
// its transaction; every append then runs alone, the repeat is a replay and
// the others commit once.
func TestGroupCommitFallsBackOnError(t *testing.T) {
	s, db := newStore(t)
	s.WithGroupCommit(1)
	tenant := uuid.New()
	ctx := context.Background()

	first := eventstore.Append{Stream: stream(t), TenantID: tenant, Expected: eventstore.Any(), CommandID: uuid.New(), Events: oneEvent("a_happened", nil)}
	orig, err := s.Append(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	queue, release := startBlockedGroup(t, s, db, tenant)
	other := eventstore.Append{Stream: stream(t), TenantID: tenant, Expected: eventstore.Any(), CommandID: uuid.New(), Events: oneEvent("b_happened", nil)}
	repeat := first
	repeat.Events = oneEvent("a_happened", nil) // a fresh event id, as a retried command has
	outs := queue(other, repeat)
	release()

	if o := <-outs[0]; o.err != nil || o.res.Replayed || o.res.LastVersion != 1 {
		t.Errorf("other append: %+v, %v", o.res, o.err)
	}
	if o := <-outs[1]; o.err != nil || !o.res.Replayed || o.res.LastPosition != orig.LastPosition {
		t.Errorf("repeated command: %+v, %v; want the replay of %+v", o.res, o.err, orig)
	}
	var n int
	if err := db.AdminConn(t).QueryRow(ctx, `SELECT count(*) FROM events WHERE stream_id = ANY($1)`,
		[]string{first.Stream.String(), other.Stream.String()}).Scan(&n); err != nil || n != 2 {
		t.Errorf("events recorded: %d (%v), want 2", n, err)
	}
	verifyChains(t, s)
}

// TestGroupCommitLeavesLockedStreamsAlone: an append whose stream another
// transaction has locked leaves the group, waits for the lock as a lone
// append does, and commits after that transaction, in log order too.
func TestGroupCommitLeavesLockedStreamsAlone(t *testing.T) {
	s, db := newStore(t)
	s.WithGroupCommit(1)
	tenant := uuid.New()

	locked := stream(t)
	holderXID, releaseLocked := holdStreamLock(t, db, locked)
	queue, release := startBlockedGroup(t, s, db, tenant)
	free := stream(t)
	outs := queue(
		eventstore.Append{Stream: free, TenantID: tenant, Expected: eventstore.Any(), Events: oneEvent("a_happened", nil)},
		eventstore.Append{Stream: locked, TenantID: tenant, Expected: eventstore.Any(), Events: oneEvent("b_happened", nil)},
	)
	release()
	if o := <-outs[0]; o.err != nil {
		t.Fatalf("append to the free stream: %v", o.err)
	}
	waitFor(t, "the locked stream's append waits on its lock", waitingOnLock(t, db))
	select {
	case o := <-outs[1]:
		t.Fatalf("the locked stream's append returned while its lock was held: %+v, %v", o.res, o.err)
	default:
	}
	releaseLocked()
	if o := <-outs[1]; o.err != nil || o.res.LastVersion != 1 {
		t.Fatalf("append to the locked stream: %+v, %v", o.res, o.err)
	}
	if txs := transactionsOf(t, db, locked); len(txs) != 1 || txs[0] <= holderXID {
		t.Errorf("the locked stream's event is in transaction %v, want one after the lock holder's %d", txs, holderXID)
	}
	verifyChains(t, s)
}

// TestGroupCommitFlushersRetire: flushers that gather and linger for the
// next appends (append_group.go) still retire once the appends stop, and
// every append of concurrent writers is committed once, in version order.
func TestGroupCommitFlushersRetire(t *testing.T) {
	s, _ := newStore(t)
	tenant := uuid.New()
	ctx := context.Background()
	const writers, appends = 8, 25
	streams := make([]eventlog.StreamID, writers)
	errs := make(chan error, writers)
	for w := range writers {
		streams[w] = stream(t)
		go func() {
			for i := range appends {
				res, err := s.Append(ctx, eventstore.Append{Stream: streams[w], TenantID: tenant, Expected: eventstore.Any(),
					CommandID: uuid.New(), Events: oneEvent("a_happened", nil)})
				if err == nil && res.FirstVersion != int64(i+1) {
					err = fmt.Errorf("append %d to %s at version %d", i+1, streams[w], res.FirstVersion)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the flushers retire", func() bool { return eventstore.ActiveFlushers(s) == 0 })
	for _, st := range streams {
		evs, err := s.ReadStream(ctx, tenant, st, 0, 2*appends)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != appends {
			t.Errorf("%s holds %d events, want %d", st, len(evs), appends)
		}
	}
	verifyChains(t, s)
}
