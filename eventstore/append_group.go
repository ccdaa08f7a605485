package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Group commit: concurrent Store.Append calls share transactions.
//
// Measured (docs/BENCHMARKS.md, "Issue 16: appends"), an append's time is
// mostly the wait for its commit's WAL flush (LWLock:WALWrite, IO:WALSync),
// and its WAL is ten records against a plain INSERT's two. PostgreSQL already
// flushes the commits that are waiting together, but each append still pays
// its own transaction, commit record and flush wait. Here, at most
// groupFlushers transactions are in flight at once; an Append that finds them
// all busy queues, and the next free flusher commits everything queued in one
// transaction: one commit and one flush for the lot, in one round trip (two
// when a stream of the group is locked elsewhere, append_group_run.go).
//
// Every guarantee of a lone append holds for each append of a group:
//   - Stream locks. The group takes the stream lock of each of its appends
//     before its first write, as a lone append does (see AppendScopeSQL), with
//     pg_try_advisory_xact_lock: a group never waits on a lock, so it can
//     join no deadlock with transactions that hold stream locks and wait on
//     something else (AppendTx in a command). An append whose stream is
//     locked elsewhere leaves the group and runs alone, waiting as usual.
//   - Expected versions. Each append runs the same guarded statement as a
//     lone one; a failed guard writes nothing and is explained after commit,
//     as alone (appendRejected).
//   - Errors. Anything that raises an error (a repeated command id, a
//     duplicate event id, another tenant's stream) aborts the group's
//     transaction, which wrote nothing, and its appends run again alone, where
//     the error is translated as always (appendFailed).
//   - Log order. One group is one transaction: its events share a transaction
//     id and follow each other in global position, each stream's in version
//     order. Readers see the whole group at once, below the watermark.
//
// A lone Append (no other in flight) runs at once on its own, as before: a
// single writer pays nothing for the grouping.
//
// A flusher's callers append again as soon as they are answered. So a
// flusher gathers before each group: it waits, at most flusherGather, until
// as many appends are queued as its last group had; and one whose queue ran
// dry lingers flusherLinger before it retires. Taking whatever was queued
// the moment a group ended made groups of one or two at 8 writers; gathered,
// most are of four, and 8 writers append 14–24 % faster (docs/BENCHMARKS.md,
// "Issue 16, twelfth session").

// groupFlushers is how many group transactions run at once by default.
// Measured on 2 cores (docs/BENCHMARKS.md, "Issue 16: appends, second pass"
// and "flushers again"): one flusher costs the least CPU per append but
// serialises the flushes (8 writers at half the rate). Two against four,
// alternating: on the machine of the second pass (slower fsync, ~3× the CPU
// per VM of today's), four were faster at 32 writers in both pairs; on
// today's, two are faster at 32 writers in 6 pairs of 6 (8,200–8,500 against
// 5,800–7,000 appends/s, p99 8 against 11–14 ms, 20 % less CPU per append:
// larger groups) and equal at 8 writers. Two is the default now; the
// -append-group-commit flag of the bench measures others.
const groupFlushers = 2

// maxGroupEvents bounds the events of one group transaction; an append
// larger than that always runs alone.
const maxGroupEvents = MaxEventsPerAppend

// WithGroupCommit sets how many group transactions may run at once (see
// append_group.go); 0 turns grouping off, so that every Append runs in a
// transaction of its own. It returns s.
func (s *Store) WithGroupCommit(flushers int) *Store {
	if flushers <= 0 {
		s.group = nil
		return s
	}
	s.group = newAppendGroup(flushers)
	return s
}

// appendGroup is the queue of appends waiting for a flusher.
type appendGroup struct {
	flushers int

	mu      sync.Mutex
	active  int // flushers running, lingering ones included
	pending []*queuedAppend
	// arrived tells a lingering flusher that the queue has an append.
	arrived chan struct{}
}

func newAppendGroup(flushers int) *appendGroup {
	return &appendGroup{flushers: flushers, arrived: make(chan struct{}, 1)}
}

// queuedAppend is one Append call waiting for its group's outcome.
type queuedAppend struct {
	a      Append
	p      prepared
	start  time.Time
	done   chan appendOutcome // buffered: a flusher never waits on a caller
	taken  bool               // a flusher has it (under appendGroup.mu)
	events int
}

type appendOutcome struct {
	res AppendResult
	err error
}

// appendGrouped queues a behind the running flushers, or becomes a flusher
// itself when one is free.
func (s *Store) appendGrouped(ctx context.Context, a Append) (AppendResult, error) {
	g := s.group
	p, err := a.prepare()
	if err != nil {
		return AppendResult{}, err
	}
	q := &queuedAppend{a: a, p: p, start: time.Now(), done: make(chan appendOutcome, 1), events: len(p.ids)}
	g.mu.Lock()
	if g.active < g.flushers {
		// A free flusher: run this append now, alone, then whatever queued
		// behind it meanwhile.
		g.active++
		q.taken = true
		g.mu.Unlock()
		res, err := s.appendAlone(ctx, a)
		go s.flush(context.WithoutCancel(ctx))
		return res, err
	}
	g.pending = append(g.pending, q)
	g.mu.Unlock()
	select {
	case g.arrived <- struct{}{}:
	default: // a wake-up is already on its way
	}

	select {
	case out := <-q.done:
		return out.res, out.err
	case <-ctx.Done():
		g.mu.Lock()
		taken := q.taken
		if !taken {
			q.taken = true // the flusher will skip it
		}
		g.mu.Unlock()
		if taken {
			// A flusher is committing it: the outcome is the group's.
			out := <-q.done
			return out.res, out.err
		}
		return AppendResult{}, fmt.Errorf("append to %s: %w", a.Stream, ctx.Err())
	}
}

// appendAlone is the lone append: one pooled connection, one transaction.
func (s *Store) appendAlone(ctx context.Context, a Append) (AppendResult, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return AppendResult{}, fmt.Errorf("append to %s: %w", a.Stream, err)
	}
	defer conn.Release()
	return s.append(ctx, conn, a, true)
}

// take removes from the queue the appends of the next group, in arrival
// order, up to maxGroupEvents events (at least one append). Callers hold mu.
func (g *appendGroup) take() []*queuedAppend {
	var batch []*queuedAppend
	events, n := 0, 0
	for ; n < len(g.pending); n++ {
		q := g.pending[n]
		if q.taken {
			continue // its caller gave up
		}
		if len(batch) > 0 && events+q.events > maxGroupEvents {
			break
		}
		q.taken = true
		batch = append(batch, q)
		events += q.events
	}
	g.pending = g.pending[n:]
	return batch
}

// commitGroup runs batch: alone if it is one append; otherwise in one
// transaction, with the appends whose stream it could not lock, or all of
// them if the transaction failed, run alone afterwards.
func (s *Store) commitGroup(ctx context.Context, batch []*queuedAppend) {
	if len(batch) == 1 {
		q := batch[0]
		res, err := s.appendAlone(ctx, q.a)
		q.done <- appendOutcome{res, err}
		return
	}
	ctx, cancel := context.WithTimeout(ctx, groupTimeout)
	defer cancel()
	alone, err := s.runGroup(ctx, batch)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		// The server refused something and rolled the whole group back:
		// each append again alone, where its error is translated as always.
		alone = batch
	case err != nil:
		// The connection failed: the commit's outcome may be unknown, and
		// running the appends again could record them twice. Their callers
		// hear of it, as from a lone append.
		for _, q := range batch {
			q.done <- appendOutcome{err: fmt.Errorf("append to %s: %w", q.a.Stream, err)}
		}
		return
	}
	var wg sync.WaitGroup
	for _, q := range alone {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.appendAlone(ctx, q.a)
			q.done <- appendOutcome{res, err}
		}()
	}
	wg.Wait()
}
