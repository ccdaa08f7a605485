package projections

import (
	"context"
	"sync"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/jackc/pgx/v5/pgxpool"
)

// moveGroupSQL is moveOverIgnored's compare-and-set for several projectors
// at once: each row of the arrays is one move, and the statement answers the
// ordinal of each that moved. A checkpoint row locked by someone else (a
// rebuild's swap, another process's runner) is skipped, not waited for: its
// move fails and its runner takes the locked path, so no projector waits
// for another's lock and two processes' groups cannot deadlock. Two
// requests for one checkpoint in a group (two runners of one projector in a
// process) match one row: PostgreSQL updates it from one of them only, so
// only that one is answered as moved.
const moveGroupSQL = `WITH m AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[])
		WITH ORDINALITY AS m(name, from_txid, from_gp, to_txid, to_gp, projector, i)),
	l AS (SELECT c.name FROM checkpoints c WHERE c.name = ANY($1) FOR UPDATE SKIP LOCKED),
	u AS (UPDATE checkpoints c SET transaction_id = m.to_txid, global_position = m.to_gp, updated_at = now() FROM m
		WHERE c.name = m.name AND c.name IN (SELECT name FROM l) AND c.transaction_id = m.from_txid AND c.global_position = m.from_gp
		RETURNING m.i, m.projector)
SELECT u.i, pg_notify('` + checkpointChannel + `', u.projector) FROM u`

// moveGroups coalesces the moves over ignored batches of every runner on
// one pool: each runner sees every event, so the projectors that ignore an
// event all move at about the same time, and one statement (one commit)
// instead of one each carries them. Keyed by pool, so that runners share
// it without wiring.
var moveGroups sync.Map // *pgxpool.Pool → *moveGroup

type moveGroup struct {
	pool  *pgxpool.Pool
	mu    sync.Mutex
	queue []*moveRequest
	busy  bool // a caller is running the queue
}

type moveRequest struct {
	name, projector string
	from, to        eventlog.Position
	moved           bool
	done            chan struct{} // closed with moved set
	lead            chan struct{} // closed when this caller is to run the queue
}

func moveGroupOf(pool *pgxpool.Pool) *moveGroup {
	g, _ := moveGroups.LoadOrStore(pool, &moveGroup{pool: pool})
	return g.(*moveGroup)
}

// move asks for one compare-and-set and waits for its group's answer. A
// caller that finds nobody running the queue runs it, once: its statement
// carries every request queued by then, its own included. Requests that
// arrive meanwhile wait; the first of them then runs the next round, and so
// on, so nobody serves others for longer than one round trip. A failed
// statement moves nothing of its group, and each of its callers takes the
// locked path. Waits are bounded by the statement's own timeout.
func (g *moveGroup) move(ctx context.Context, projector string, from, to eventlog.Position) bool {
	req := &moveRequest{name: CheckpointName(projector), projector: projector, from: from, to: to,
		done: make(chan struct{}), lead: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, req)
	if g.busy {
		g.mu.Unlock()
		select {
		case <-req.done:
			return req.moved
		case <-req.lead:
		}
		g.mu.Lock()
	}
	g.busy = true
	group := g.queue // req is in it
	g.queue = nil
	g.mu.Unlock()

	g.run(ctx, group)

	g.mu.Lock()
	if len(g.queue) > 0 {
		close(g.queue[0].lead) // busy stays true: handed over
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	return req.moved
}

func (g *moveGroup) run(ctx context.Context, group []*moveRequest) {
	defer func() {
		for _, r := range group {
			close(r.done)
		}
	}()
	n := len(group)
	names, projectors := make([]string, n), make([]string, n)
	fromTx, fromGP, toTx, toGP := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, r := range group {
		names[i], projectors[i] = r.name, r.projector
		fromTx[i], fromGP[i] = int64(r.from.TransactionID), r.from.GlobalPosition
		toTx[i], toGP[i] = int64(r.to.TransactionID), r.to.GlobalPosition
	}
	// Others' moves ride on this caller's statement: its own end must not
	// cut them short.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultApplyTimeout)
	defer cancel()
	rows, err := g.pool.Query(ctx, moveGroupSQL, names, fromTx, fromGP, toTx, toGP, projectors)
	if err != nil {
		return
	}
	defer rows.Close()
	moved := make([]bool, n)
	for rows.Next() {
		var i int64
		if err := rows.Scan(&i, nil); err != nil || i < 1 || int(i) > n {
			return
		}
		moved[i-1] = true
	}
	if rows.Err() != nil {
		return // not committed: nothing moved
	}
	for i, r := range group {
		r.moved = moved[i]
	}
}
