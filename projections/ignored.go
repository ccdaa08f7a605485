package projections

import (
	"context"

	"github.com/accountdb/accountdb/eventlog"
)

// moveOverIgnored handles a batch whose next events the projector all
// ignores (most batches of most projectors: each sees every event of the
// log and declares a few types) without a transaction of its own: planned
// against the checkpoint this runner last committed, it moves the
// checkpoint to the batch's end with a compare-and-set (ignored_group.go:
// one autocommitted statement for the moves of every runner on the pool at
// that moment, with their notifications). It locks the checkpoint's row,
// as every other mover of the checkpoint does (lockCheckpoint: live
// batches, a rebuild's swap), and skips it if one of them holds it. That is exactly
// what the locked path would commit: the same plan (the checkpoint is the
// one planned against, or nothing moves), no read-model change (Apply is
// never called for an undeclared type, see applyReplayed), and the
// checkpoint and its notification at once, so consistency tokens of those
// positions are served as promptly as before. Checkpoints only move
// forward (a rebuild's swap refuses to move one back: ErrCheckpointAhead),
// so a checkpoint equal to the cached one has not moved since.
//
// ok is false when the fast path does not apply (nothing cached, nothing to
// apply, an event the projector reacts to), the checkpoint has moved
// (another runner, a rebuild) or the statement failed: the caller then
// takes the locked path, which finds out.
func (r *Runner) moveOverIgnored(ctx context.Context, ds []delivery) (p batchPlan, last eventlog.Event, ok bool) {
	if !r.cpKnown {
		return batchPlan{}, eventlog.Event{}, false
	}
	p = plan(r.cp, ds)
	if len(p.apply) == 0 {
		return batchPlan{}, eventlog.Event{}, false
	}
	for _, i := range p.apply {
		if r.reacts(ds[i].event.Type) {
			return batchPlan{}, eventlog.Event{}, false
		}
	}
	if !moveGroupOf(r.pool).move(ctx, r.p.Name(), r.cp, p.to) {
		r.cpKnown = false // moved elsewhere, or the statement failed: lock and read it
		return batchPlan{}, eventlog.Event{}, false
	}
	r.cp = p.to
	return p, ds[p.apply[len(p.apply)-1]].event, true
}
