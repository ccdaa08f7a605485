package webhooks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// worker delivers one endpoint's events in stream order, one at a time,
// from the endpoint's saved cursor: through its subject's feed (feed.go)
// once it has caught up with it, else reading ahead through an ordered
// consumer of its own (in memory, no acknowledgements: nothing written by
// the server per delivery). A failed delivery is retried by the worker
// itself, with backoff, before any later event; meanwhile it reads nothing.
type worker struct {
	d          *Dispatcher
	id         uuid.UUID
	generation int
	endpoint   atomic.Pointer[liveEndpoint]
	// parked: delivery gave up and the endpoint is being disabled; the
	// worker sends nothing more until it is enabled again or stopped.
	parked atomic.Bool
	// delivered is the cursor: every message up to this stream sequence is
	// delivered or not for the endpoint. saved is what the store has.
	delivered atomic.Uint64
	saved     atomic.Uint64
	// reading: the worker has started reading (Dispatcher.Reading).
	reading atomic.Bool
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
}

// pending is a message whose delivery failed: the worker retries it
// before anything else.
type pending struct {
	seq      uint64
	enc      encoded
	attempts int
	retryAt  time.Time
}

func (d *Dispatcher) startWorker(parent context.Context, ep *liveEndpoint, from uint64) *worker {
	ctx, cancel := context.WithCancel(parent)
	w := &worker{d: d, id: ep.ID, generation: ep.Generation, cancel: cancel, done: make(chan struct{})}
	w.endpoint.Store(ep)
	w.delivered.Store(from)
	w.saved.Store(from)
	go func() {
		defer close(w.done)
		w.run(ctx)
	}()
	return w
}

// stop ends the worker and waits for it; an attempt in flight is
// abandoned, and delivered again by whoever dispatches the endpoint next.
func (w *worker) stop() {
	w.once.Do(func() {
		w.cancel()
		<-w.done
	})
}

// consumerConfig reads the endpoint's tenant's subjects from just after
// the cursor; without one, from webhook_created's time (a little before,
// for clocks; earlier events are skipped by position), or from the start
// of the stream after a replay (skipped up to its position).
func (w *worker) consumerConfig(e Endpoint) jetstream.OrderedConsumerConfig {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filterSubject(e)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		// Named after the endpoint (for an operator's listing), and unique:
		// a consumer stopped is deleted a moment later, so its successor
		// must not take its name.
		NamePrefix: "hook_" + strings.ReplaceAll(e.ID.String(), "-", "") + "_" + uuid.NewString()[:8],
		// A worker that died without deleting its consumer leaves it for
		// this long.
		InactiveThreshold: time.Minute,
	}
	switch {
	case w.delivered.Load() > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, w.delivered.Load()+1
	case e.Generation == 0:
		start := e.StartTime.Add(-time.Minute)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	return cfg
}

func (w *worker) run(ctx context.Context) {
	var head *pending
	var sub *subscription
	for ctx.Err() == nil {
		if head != nil {
			head = w.retry(ctx, head)
			continue
		}
		subject := filterSubject(w.endpoint.Load().Endpoint)
		if sub == nil {
			sub = w.d.feeds.join(w, subject, w.delivered.Load())
		}
		var err error
		dropped := false // by the feed, for falling behind: read by itself at once
		if sub != nil {
			head, err = w.consumeFeed(ctx, subject, sub)
			sub, dropped = nil, err == nil
		} else {
			head, sub, err = w.consume(ctx, subject)
		}
		if head != nil || sub != nil || dropped || ctx.Err() != nil {
			continue
		}
		if err != nil {
			w.d.log.Warn("webhooks: reading the stream", "webhook", w.id, "err", err)
		}
		sleep(ctx, time.Second)
	}
}

// consumeFeed delivers what the subject's feed hands w until a delivery
// fails (returned, to be retried), the feed drops w (nil, nil: it fell
// behind and reads on by itself) or ends (its error).
func (w *worker) consumeFeed(ctx context.Context, subject string, s *subscription) (*pending, error) {
	defer w.d.feeds.leave(w, subject, s)
	w.reading.Store(true)
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case it, ok := <-s.ch:
			if !ok {
				return nil, s.err
			}
			if p, err := w.take(ctx, it); p != nil || err != nil {
				return p, err
			}
		}
	}
}

// joinEvery is how often a worker reading by itself, with nothing to read,
// looks whether it can join its subject's feed.
const joinEvery = 250 * time.Millisecond

// consume delivers messages read through a consumer of w's own until one
// fails (returned, to be retried), the stream cannot be read (the error),
// or w has caught up with its subject's feed (the subscription).
func (w *worker) consume(ctx context.Context, subject string) (*pending, *subscription, error) {
	cons, err := w.d.js.OrderedConsumer(ctx, bus.StreamName, w.consumerConfig(w.endpoint.Load().Endpoint))
	if err != nil {
		return nil, nil, err
	}
	// Read ahead: the next messages wait here while one is delivered, so
	// an endpoint's pace is its own round trip, not the server's too.
	msgs, err := cons.Messages(jetstream.PullMaxMessages(64))
	if err != nil {
		return nil, nil, err
	}
	w.reading.Store(true)
	defer w.d.release(ctx, cons, msgs)()
	for {
		m, err := msgs.Next(jetstream.NextMaxWait(joinEvery))
		switch {
		case errors.Is(err, nats.ErrTimeout):
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			return nil, nil, ctx.Err()
		case err != nil:
			return nil, nil, err
		default:
			if p, err := w.take(ctx, w.d.decode(m, subject)); p != nil || err != nil {
				return p, nil, err
			}
		}
		if s := w.d.feeds.join(w, subject, w.delivered.Load()); s != nil {
			return nil, s, nil
		}
	}
}

// take delivers one message read (or passes it): a pending delivery when
// it failed, to be retried; an error when it must be read again from the
// cursor a moment later (its keys cannot be read now).
func (w *worker) take(ctx context.Context, it *item) (*pending, error) {
	if it == nil {
		return nil, nil // not a message of the stream: nothing moves
	}
	if it.err != nil {
		return nil, it.err
	}
	p := &pending{seq: it.seq, enc: it.enc}
	if !it.event || !w.wants(it) {
		w.delivered.Store(p.seq)
		return nil, nil
	}
	if !w.attempt(ctx, p) {
		return p, nil
	}
	return nil, nil
}

// wants is whether it is for w's endpoint (its type, not before the
// endpoint's start, and of its tenant).
func (w *worker) wants(it *item) bool {
	ep, e := w.endpoint.Load(), it.enc.event
	if !ep.Platform && e.TenantID != ep.Tenant {
		// The consumer's filter makes this impossible; never deliver it.
		w.d.log.Error("webhooks: another tenant's event reached an endpoint's consumer", "webhook", w.id, "position", e.Position.GlobalPosition)
		return false
	}
	return ep.wants(e.Position, e.Type)
}

// attempt sends p once and records it; true when delivered (the cursor
// moves past it). On a failure it sets when to retry, or disables the
// endpoint (410, or failing for longer than the give-up window).
func (w *worker) attempt(ctx context.Context, p *pending) bool {
	d, ep := w.d, w.endpoint.Load()
	o := d.send(ctx, ep, p.enc)
	if ctx.Err() != nil && !o.ok() {
		return false // stopping: not an answer from the endpoint
	}
	e := p.enc.event
	if !o.ok() && p.attempts == 0 {
		// This worker's first attempt failed: an earlier run's failures of
		// the event count too, so numbering and backoff carry on.
		d.recorder.flush(ctx)
		if _, n, err := d.store.Failures(ctx, ep.Tenant, ep.ID, e.Position.GlobalPosition, ep.EnabledSince); err == nil {
			p.attempts = n
		}
	}
	p.attempts++
	d.recorder.add(ctx, record(ep, e, p.attempts, o, uuid.Nil, d.now()))
	switch {
	case o.ok():
		w.delivered.Store(p.seq)
		return true
	case o.code == 410:
		w.disable(ctx, ep, "the endpoint answered 410 Gone", e.Position.GlobalPosition)
	default:
		d.recorder.flush(ctx)
		first, n, err := d.store.Failures(ctx, ep.Tenant, ep.ID, e.Position.GlobalPosition, ep.EnabledSince)
		if err == nil && n > 0 && d.now().Sub(first) >= d.opts.Backoff.GiveUpAfter {
			w.disable(ctx, ep, fmt.Sprintf("no delivery succeeded for %s (event at position %d, %d attempts; last: %s)",
				d.opts.Backoff.GiveUpAfter, e.Position.GlobalPosition, p.attempts, errorText(o)), e.Position.GlobalPosition)
		}
	}
	p.retryAt = d.now().Add(d.opts.Backoff.Delay(p.attempts))
	return false
}

// retry attempts p again when its time comes (or, parked, once the
// endpoint is enabled again) until it is delivered: nil then, else p.
func (w *worker) retry(ctx context.Context, p *pending) *pending {
	for ctx.Err() == nil {
		if w.parked.Load() {
			p.retryAt = time.Time{} // enabled again: at once
			sleep(ctx, w.d.opts.PollInterval)
			continue
		}
		if wait := p.retryAt.Sub(w.d.now()); wait > 0 {
			sleep(ctx, min(wait, w.d.opts.PollInterval))
			continue
		}
		if w.attempt(ctx, p) {
			return nil
		}
	}
	return p
}

// disable records why delivery gave up; the next reconcile stops the
// worker. The message stays undelivered: re-enabling resumes with it.
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

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
