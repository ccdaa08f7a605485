package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// groupTimeout bounds a group's transaction and the lone appends after it:
// its callers are not waiting on their own contexts meanwhile.
const groupTimeout = 30 * time.Second

// groupLockAllSQL takes every stream's append lock without waiting, or
// fails the transaction with lock_not_available when one is held elsewhere
// (events_group_lock, migration 00050).
const groupLockAllSQL = `SELECT events_group_lock(` + streamLockNamespace + `, $1::text[])`

// groupLockSQL tries each stream's append lock, in order, without waiting.
const groupLockSQL = `SELECT pg_try_advisory_xact_lock(` + streamLockNamespace + `, hashtext(s))
	FROM unnest($1::text[]) WITH ORDINALITY AS u(s, i) ORDER BY i`

// groupScopeSQL scopes what follows in the group's transaction to one
// append's tenant; its stream lock is already held.
const groupScopeSQL = `SELECT set_config('app.tenant_id', $1, true)`

// runGroup commits the appends of batch whose streams it could lock in one
// transaction and answers their callers; it returns the appends left to run
// alone. An error means the transaction did not commit (or may not have) and
// no caller was answered.
//
// The whole transaction is first sent in one round trip: begin, every
// stream's lock, the appends, commit. Only when a stream is locked elsewhere
// (a command's transaction holds it) does that fail, and the group then
// takes the locks that are free in one round trip and appends in a second,
// leaving the others to run alone. One round trip instead of two, on 2
// cores: 7 % more appends per second at 8 writers (faster in 6 pairs of 6),
// 4 % at 32, 10 % less CPU per append in the writing process
// (docs/BENCHMARKS.md, issue 16, eighth session): each round trip costs
// both processes system calls and wake-ups, and a flusher's cycle is
// shorter.
func (s *Store) runGroup(ctx context.Context, batch []*queuedAppend) (alone []*queuedAppend, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	ok := false
	defer func() {
		if !ok {
			tenantdb.Rollback(conn)
		}
	}()
	results, err := runGroupAtOnce(ctx, conn, batch)
	group := batch
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == lockNotAvailable {
		if _, err = conn.Exec(ctx, `ROLLBACK`); err != nil {
			return nil, err
		}
		group, alone, err = lockFreeStreams(ctx, conn, batch)
		if err == nil {
			results, err = appendAndCommit(ctx, conn, group, nil)
		}
	}
	if err != nil {
		return nil, err
	}
	ok = true
	s.answerGroup(ctx, group, results)
	return alone, nil
}

// lockNotAvailable is the SQLSTATE events_group_lock raises.
const lockNotAvailable = "55P03"

// runGroupAtOnce is the group's transaction in one round trip.
func runGroupAtOnce(ctx context.Context, conn *pgxpool.Conn, batch []*queuedAppend) ([]AppendResult, error) {
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(groupLockAllSQL, groupStreams(batch))
	return appendAndCommit(ctx, conn, batch, b)
}

func groupStreams(batch []*queuedAppend) []string {
	streams := make([]string, len(batch))
	for i, q := range batch {
		streams[i] = q.a.Stream.String()
	}
	return streams
}

// lockFreeStreams begins the transaction and takes every stream lock of
// batch that is free, in one round trip; it splits batch into the appends
// whose lock it holds and those left to run alone.
func lockFreeStreams(ctx context.Context, conn *pgxpool.Conn, batch []*queuedAppend) (group, alone []*queuedAppend, err error) {
	lb := &pgx.Batch{}
	lb.Queue(`BEGIN`)
	lb.Queue(groupLockSQL, groupStreams(batch))
	br := conn.SendBatch(ctx, lb)
	_, err = br.Exec()
	var locked []bool
	if err == nil {
		var rows pgx.Rows
		if rows, err = br.Query(); err == nil {
			locked, err = pgx.CollectRows(rows, pgx.RowTo[bool])
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && len(locked) != len(batch) {
		err = fmt.Errorf("group lock: %d answers for %d streams", len(locked), len(batch))
	}
	if err != nil {
		return nil, nil, err
	}
	for i, q := range batch {
		if locked[i] {
			group = append(group, q)
		} else {
			alone = append(alone, q)
		}
	}
	return group, alone, nil
}

// appendAndCommit sends what b holds (nil: nothing yet), then each append of
// group under its tenant's scope, then COMMIT, in one round trip, and reads
// the appends' results.
func appendAndCommit(ctx context.Context, conn *pgxpool.Conn, group []*queuedAppend, b *pgx.Batch) ([]AppendResult, error) {
	before := 0
	if b == nil {
		b = &pgx.Batch{}
	} else {
		before = b.Len()
	}
	for _, q := range group {
		b.Queue(groupScopeSQL, q.a.TenantID.String())
		queueAppend(b, q.a, q.p)
	}
	b.Queue(`COMMIT`)
	results := make([]AppendResult, len(group))
	br := conn.SendBatch(ctx, b)
	var err error
	for i := 0; err == nil && i < before; i++ {
		_, err = br.Exec()
	}
	for i := 0; err == nil && i < len(group); i++ {
		if _, err = br.Exec(); err == nil {
			r := &results[i]
			r.Stream = group[i].a.Stream
			err = br.QueryRow().Scan(&r.FirstVersion, &r.LastVersion, &r.LastPosition)
		}
	}
	if err == nil {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return results, nil
}

// answerGroup answers the callers of a committed group.
func (s *Store) answerGroup(ctx context.Context, group []*queuedAppend, results []AppendResult) {
	for i, q := range group {
		res := results[i]
		if res.LastPosition == 0 {
			// The guard let nothing through: say why, as a lone append does.
			res, err := s.appendRejected(ctx, q.a)
			q.done <- appendOutcome{res, err}
			continue
		}
		s.metrics.observeAppend(time.Since(q.start), q.events)
		q.done <- appendOutcome{res, nil}
	}
}
