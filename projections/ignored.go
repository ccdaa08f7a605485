package projections

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/eventlog"
)

// moveOverIgnoredSQL moves a checkpoint from $2/$3 to $4/$5 only if it is
// still at $2/$3, and notifies waiters on projector $6, in one autocommitted
// statement. The row lock the UPDATE takes is the one every other mover of
// the checkpoint takes too (lockCheckpoint: live batches, a rebuild's swap),
// so it waits for them and re-checks the condition on the row they leave.
const moveOverIgnoredSQL = `WITH u AS (UPDATE checkpoints SET transaction_id = $4, global_position = $5, updated_at = now()
	WHERE name = $1 AND transaction_id = $2 AND global_position = $3 RETURNING 1)
SELECT pg_notify('` + checkpointChannel + `', $6) FROM u`

// moveOverIgnored handles a batch whose next events the projector all
// ignores (most batches of most projectors: each sees every event of the
// log and declares a few types) without a transaction of its own: planned
// against the checkpoint this runner last committed, it moves the
// checkpoint to the batch's end with a compare-and-set. That is exactly
// what the locked path would commit: the same plan (the checkpoint is the
// one planned against, or nothing moves), no read-model change (Apply is
// never called for an undeclared type, see applyReplayed), and the
// checkpoint and its notification at once, so consistency tokens of those
// positions are served as promptly as before. Checkpoints only move
// forward (a rebuild's swap refuses to move one back: ErrCheckpointAhead),
// so a checkpoint equal to the cached one has not moved since.
//
// ok is false when the fast path does not apply (nothing cached, nothing to
// apply, an event the projector reacts to) or the checkpoint has moved
// (another runner, a rebuild): the caller then takes the locked path.
func (r *Runner) moveOverIgnored(ctx context.Context, ds []delivery) (p batchPlan, last eventlog.Event, ok bool, err error) {
	if !r.cpKnown {
		return batchPlan{}, eventlog.Event{}, false, nil
	}
	p = plan(r.cp, ds)
	if len(p.apply) == 0 {
		return batchPlan{}, eventlog.Event{}, false, nil
	}
	for _, i := range p.apply {
		if r.reacts(ds[i].event.Type) {
			return batchPlan{}, eventlog.Event{}, false, nil
		}
	}
	from := r.cp
	tag, err := r.pool.Exec(ctx, moveOverIgnoredSQL, CheckpointName(r.p.Name()), int64(from.TransactionID), from.GlobalPosition,
		int64(p.to.TransactionID), p.to.GlobalPosition, r.p.Name())
	if err != nil {
		r.cpKnown = false
		return batchPlan{}, eventlog.Event{}, false, fmt.Errorf("move checkpoint %s over ignored events: %w", CheckpointName(r.p.Name()), err)
	}
	if tag.RowsAffected() != 1 {
		r.cpKnown = false // moved elsewhere: lock and read it
		return batchPlan{}, eventlog.Event{}, false, nil
	}
	r.cp = p.to
	return p, ds[p.apply[len(p.apply)-1]].event, true, nil
}
