package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
)

// process applies one batch in one transaction and then settles its messages:
// the checkpoint moves in the same transaction as the read model, and acks are
// sent only after the commit. A crash between the two leaves messages that
// JetStream redelivers, and the checkpoint makes them no-ops.
func (r *Runner) process(ctx context.Context, msgs []jetstream.Msg) error {
	// A batch in flight finishes even if Run is being stopped.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.ApplyTimeout)
	defer cancel()

	ds := make([]delivery, len(msgs))
	for i, m := range msgs {
		ds[i] = decode(m, r.reacts)
		if ds[i].ignored {
			continue
		}
		if ds[i].err == nil && r.opts.Revealer != nil {
			// A key that cannot be read now holds the event back, like
			// one that cannot be decoded: it is retried, never skipped.
			one := []eventlog.Event{ds[i].event}
			ds[i].err = r.opts.Revealer.Reveal(ctx, one)
			ds[i].event = one[0]
		}
		if ds[i].err == nil {
			ds[i].err = r.opts.Upcasters.Upcast(&ds[i].event)
		}
	}
	p, last, err := r.applyBatch(ctx, ds)
	if err != nil {
		// Nothing was committed (or, if the commit's outcome is unknown, the
		// checkpoint will say so on redelivery): hand everything back.
		r.settle(ds, batchPlan{later: allIndexes(len(ds))}, r.retryDelay)
		return err
	}
	r.metrics.observeCommit(len(p.apply), last, p.to, time.Now())
	if target, ok := gapTarget(ds, p); ok && r.opts.Log != nil {
		// The events between the checkpoint and what was delivered are in
		// the log: apply them from there at rebuild speed, then this batch
		// again (what it held back now follows the checkpoint or is done).
		if err := r.catchUp(ctx, p.to, target); err != nil {
			r.log.Warn("projector catch-up from the log failed; waiting for redelivery", "err", err)
		} else if p2, last2, err := r.applyBatch(ctx, ds); err == nil {
			p = p2
			r.metrics.observeCommit(len(p.apply), last2, p.to, time.Now())
		}
	}
	r.retryDelay = r.opts.MinRetryDelay
	r.settle(ds, p, r.opts.GapDelay)
	r.noteGaps(ds, p)
	return nil
}

// applyBatch locks and reads the checkpoint, applies the events that continue
// its chain, saves the new checkpoint and commits. It returns the plan it
// carried out and the last event applied.
func (r *Runner) applyBatch(ctx context.Context, ds []delivery) (batchPlan, eventlog.Event, error) {
	if p, last, ok := r.moveOverIgnored(ctx, ds); ok {
		return p, last, nil
	}
	var (
		p    batchPlan
		last eventlog.Event
	)
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		cp, err := lockCheckpoint(ctx, tx, r.p.Name())
		if err != nil {
			return err
		}
		p = plan(cp, ds)
		if err := applyEvents(ctx, tx, r.p, r.reacts, ds, p.apply); err != nil {
			return err
		}
		if len(p.apply) == 0 {
			return nil
		}
		last = lastDecoded(ds, p.apply)
		return saveAndNotifyCheckpoint(ctx, tx, r.p.Name(), p.to)
	})
	if err != nil {
		return batchPlan{}, eventlog.Event{}, fmt.Errorf("apply batch: %w", err)
	}
	r.cp, r.cpKnown = p.to, true // committed: where the next batch starts
	return p, last, nil
}

// lastDecoded is the last of ds[idx...] that was decoded (an ignored
// event carries no time for the lag metric); zero when none was.
func lastDecoded(ds []delivery, idx []int) eventlog.Event {
	for j := len(idx) - 1; j >= 0; j-- {
		if d := ds[idx[j]]; !d.ignored {
			return d.event
		}
	}
	return eventlog.Event{}
}

// gapTarget is the furthest event a plan held back for a gap, if any: the
// position catch-up must reach.
func gapTarget(ds []delivery, p batchPlan) (eventlog.Position, bool) {
	var target eventlog.Position
	found := false
	for _, i := range p.later {
		if d := ds[i]; d.err == nil && p.to.Less(d.event.Position) && target.Less(d.event.Position) {
			target, found = d.event.Position, true
		}
	}
	return target, found
}

// catchUp applies the log's events after from, batch by batch, until the
// checkpoint reaches target (or the log has nothing more visible yet).
func (r *Runner) catchUp(ctx context.Context, from, target eventlog.Position) error {
	cp, total := from, 0
	for cp.Less(target) {
		events, err := r.opts.Log.ReadAll(ctx, cp, r.opts.BatchSize)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			break
		}
		ds := make([]delivery, len(events))
		prev := cp
		for i, e := range events {
			ds[i] = delivery{event: e, prev: prev}
			prev = e.Position
		}
		p, last, err := r.applyBatch(ctx, ds)
		if err != nil {
			return err
		}
		if len(p.apply) == 0 {
			break // another runner moved the checkpoint elsewhere meanwhile
		}
		r.metrics.observeCommit(len(p.apply), last, p.to, time.Now())
		cp, total = p.to, total+len(p.apply)
	}
	if total > 0 {
		r.log.Info("projector caught up from the log across a gap", "events", total, "checkpoint", cp.GlobalPosition)
	}
	return nil
}

// applyEvents applies ds[idx...] as a rebuild does (applyReplayed): only the
// events p declared, each under its own tenant's scope, and a BatchApplier's
// per tenant in one call. Two round trips per event (scope, then Apply, even
// for an event Apply ignores) made a batch's transaction last as long as the
// round trips took, and that matters beyond this projector: the transaction
// holds an id from its first statement to its commit, and until migration
// 00051 the relay published nothing that committed after that id began until
// it ended (eventstore.ReadAll read below the snapshot's xmin), so a long
// apply delayed every subscriber of the bus (docs/BENCHMARKS.md, figure 11).
// The log's watermark now waits only for appends; a short apply still frees
// its connection sooner.
func applyEvents(ctx context.Context, tx pgx.Tx, p Projector, reacts func(string) bool, ds []delivery, idx []int) error {
	evs := make([]eventlog.Event, len(idx))
	for j, i := range idx {
		evs[j] = ds[i].event
	}
	return applyReplayed(ctx, tx, p, reacts, evs)
}

func applyEvent(ctx context.Context, tx pgx.Tx, p Projector, e eventlog.Event, scoped *uuid.UUID) error {
	if e.TenantID != *scoped || e.TenantID == uuid.Nil {
		if err := tenantdb.SetScope(ctx, tx, tenantdb.Tenant(e.TenantID)); err != nil {
			return fmt.Errorf("event %d: %w", e.Position.GlobalPosition, err)
		}
		*scoped = e.TenantID
	}
	if err := p.Apply(ctx, tx, e); err != nil {
		return fmt.Errorf("%s: event %d (%s): %w", p.Name(), e.Position.GlobalPosition, e.Type, err)
	}
	return nil
}

// settle acks what the committed plan applied or found already applied and
// hands the rest back to JetStream to redeliver after delay. Ack failures are
// harmless: the message comes back and is skipped.
func (r *Runner) settle(ds []delivery, p batchPlan, delay time.Duration) {
	if r.withholdAcks {
		return
	}
	for _, idx := range [][]int{p.apply, p.done} {
		for _, i := range idx {
			if err := ds[i].msg.Ack(); err != nil {
				r.log.Debug("ack failed; the message will be redelivered and skipped", "err", err)
			}
		}
	}
	for _, i := range p.later {
		if err := ds[i].msg.NakWithDelay(delay); err != nil {
			r.log.Debug("nak failed; the message will be redelivered after the ack wait", "err", err)
		}
	}
}

func allIndexes(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// stallLog keeps a projector that waits on a missing predecessor from logging
// once per redelivery: it warns when the wait has lasted a while, and again
// periodically, and says when the chain continues.
type stallLog struct {
	since, logged time.Time
}

const stallWarnAfter = 10 * time.Second

func (r *Runner) noteGaps(ds []delivery, p batchPlan) {
	r.metrics.gaps.Add(float64(len(p.later)))
	now := time.Now()
	switch {
	case len(p.later) == 0 || len(p.apply) > 0:
		if !r.stall.logged.IsZero() {
			r.log.Info("projector chain continues", "checkpoint", p.to.GlobalPosition, "stalled_for", now.Sub(r.stall.since))
		}
		r.stall = stallLog{}
		if len(p.later) == 0 {
			return
		}
		r.stall.since = now
	case r.stall.since.IsZero():
		r.stall.since = now
	case now.Sub(r.stall.since) >= stallWarnAfter && now.Sub(r.stall.logged) >= stallWarnAfter:
		r.stall.logged = now
		first := ds[p.later[0]]
		attrs := []any{"checkpoint", p.to.GlobalPosition, "waiting_for", "the event after the checkpoint",
			"stalled_for", now.Sub(r.stall.since), "held_back", len(p.later)}
		if first.err != nil {
			attrs = append(attrs, "undecodable", first.err.Error())
		} else {
			attrs = append(attrs, "next_delivered", first.event.Position.GlobalPosition, "its_prev", first.prev.GlobalPosition)
		}
		r.log.Warn("projector waiting for a missing event", attrs...)
	}
}
