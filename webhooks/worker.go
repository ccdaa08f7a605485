package webhooks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// worker delivers one endpoint's events from its durable consumer, one at
// a time.
type worker struct {
	d        *Dispatcher
	consumer string
	endpoint atomic.Pointer[liveEndpoint]
	// parked: delivery gave up and the endpoint is being disabled; the
	// worker sends nothing more until the reconcile stops it.
	parked atomic.Bool
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (d *Dispatcher) startWorker(parent context.Context, ep *liveEndpoint) *worker {
	ctx, cancel := context.WithCancel(parent)
	w := &worker{d: d, consumer: consumerName(ep.Endpoint), cancel: cancel, done: make(chan struct{})}
	w.endpoint.Store(ep)
	go func() {
		defer close(w.done)
		w.run(ctx)
	}()
	return w
}

// stop ends the worker and waits for it: a message it held unanswered is
// handed out again after AckWait.
func (w *worker) stop() {
	w.once.Do(func() {
		w.cancel()
		<-w.done
	})
}

// consumerConfig is e's durable consumer: its tenant's subjects, one
// message outstanding, from webhook_created's time (a little before, for
// clocks; earlier events are skipped by position), or from the start of
// the stream after a replay.
func (d *Dispatcher) consumerConfig(e Endpoint) jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:       consumerName(e),
		Description:   "webhook " + e.ID.String(),
		FilterSubject: filterSubject(e),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       d.opts.AckWait,
		MaxAckPending: 1,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if e.Generation == 0 {
		start := e.StartTime.Add(-time.Minute)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	return cfg
}

func (w *worker) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := w.consume(ctx)
		if ctx.Err() != nil {
			return
		}
		w.d.log.Warn("webhooks: consumer", "consumer", w.consumer, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (w *worker) consume(ctx context.Context) error {
	ep := w.endpoint.Load()
	cons, err := w.d.js.CreateOrUpdateConsumer(ctx, bus.StreamName, w.d.consumerConfig(ep.Endpoint))
	if err != nil {
		return err
	}
	// A pull request for several messages stays open at the server, which
	// hands out the next one as soon as the last is acknowledged
	// (MaxAckPending 1), without a request's round trip in between.
	msgs, err := cons.Messages(jetstream.PullMaxMessages(16))
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, msgs.Stop)
	defer stop()
	defer msgs.Stop()
	for {
		m, err := msgs.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			return err
		}
		w.handle(ctx, m)
	}
}

// handle delivers one message and answers JetStream: ack when delivered
// or not for this endpoint, a delayed nak to retry, nothing when the
// worker is stopping (the message comes back after AckWait).
func (w *worker) handle(ctx context.Context, m jetstream.Msg) {
	d, ep := w.d, w.endpoint.Load()
	if w.parked.Load() {
		_ = m.NakWithDelay(d.opts.Backoff.Base)
		return
	}
	pos, _, err := bus.MessagePositions(m.Headers())
	if err != nil {
		d.log.Error("webhooks: not an event message", "consumer", w.consumer, "err", err)
		_ = m.Term()
		return
	}
	enc, err := d.bodies.of(m)
	if errors.Is(err, errReveal) {
		d.log.Warn("webhooks: event keys unavailable; retrying", "consumer", w.consumer, "err", err)
		_ = m.NakWithDelay(d.opts.Backoff.Base)
		return
	}
	if err != nil {
		d.log.Error("webhooks: not an event message", "consumer", w.consumer, "err", err)
		_ = m.Term()
		return
	}
	e := enc.event
	e.Position = pos
	if !ep.Platform && e.TenantID != ep.Tenant {
		// The consumer's filter makes this impossible; never deliver it.
		d.log.Error("webhooks: another tenant's event reached an endpoint's consumer", "consumer", w.consumer, "position", pos.GlobalPosition)
		_ = m.Term()
		return
	}
	if !ep.wants(pos, e.Type) {
		_ = m.Ack()
		return
	}
	attempt := 1
	if meta, err := m.Metadata(); err == nil {
		attempt = int(meta.NumDelivered)
	}
	o := d.send(ctx, ep, enc)
	if ctx.Err() != nil && !o.ok() {
		return // stopping: not an answer from the endpoint
	}
	d.recorder.add(ctx, record(ep, e, attempt, o, uuid.Nil, d.now()))
	switch {
	case o.ok():
		// A plain ack: a lost one means the event is delivered again,
		// which at-least-once allows; waiting for the server's
		// confirmation would cost every delivery a round trip.
		_ = m.Ack()
	case o.code == 410:
		w.disable(ctx, ep, "the endpoint answered 410 Gone", pos.GlobalPosition)
		_ = m.NakWithDelay(d.opts.Backoff.Base)
	default:
		d.recorder.flush(ctx)
		first, found, err := d.store.FirstFailure(ctx, ep.Tenant, ep.ID, pos.GlobalPosition, ep.EnabledSince)
		if err == nil && found && d.now().Sub(first) >= d.opts.Backoff.GiveUpAfter {
			w.disable(ctx, ep, fmt.Sprintf("no delivery succeeded for %s (event at position %d, %d attempts; last: %s)",
				d.opts.Backoff.GiveUpAfter, pos.GlobalPosition, attempt, errorText(o)), pos.GlobalPosition)
			_ = m.NakWithDelay(d.opts.Backoff.Base)
			return
		}
		_ = m.NakWithDelay(d.opts.Backoff.Delay(attempt))
	}
}

// disable records why delivery gave up; the next reconcile stops the
// worker. The message stays unacknowledged: re-enabling resumes with it.
func (w *worker) disable(ctx context.Context, ep *liveEndpoint, reason string, position int64) {
	w.parked.Store(true)
	if err := w.d.disabler.DisableWebhook(ctx, ep.Tenant, ep.ID, reason, position); err != nil && !errors.Is(err, domain.ErrWebhookNotEnabled) {
		// Not recorded (the database is unreachable, say): deliver on, and
		// give up again at the next failure.
		w.parked.Store(false)
		w.d.log.Warn("webhooks: disabling an endpoint", "webhook", ep.ID, "tenant", ep.Tenant, "err", err)
		return
	}
	w.d.log.Info("webhooks: endpoint disabled", "webhook", ep.ID, "tenant", ep.Tenant, "reason", reason)
}
