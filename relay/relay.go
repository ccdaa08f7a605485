// Package relay publishes the PostgreSQL event store's log to the
// ACCOUNTDB_EVENTS JetStream stream, in log order and once per event as far as
// subscribers can tell, one leader-elected publisher per database. It reads
// the log through eventstore and writes messages as the bus package defines
// them; subscribers need only bus.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Options tunes a relay; zero values take the defaults.
type Options struct {
	// BatchSize is how many events one read and one round of publishes carry
	// (default 500).
	BatchSize int
	// PollInterval is the pause after a read that found nothing (default
	// 10ms). After a batch it reads again once the interval since that
	// batch's read began has passed: at once after a full batch or a cycle
	// that took longer.
	PollInterval time.Duration
	// LockRetryInterval is how often a standby tries to take over (default 500ms).
	LockRetryInterval time.Duration
	// AckTimeout bounds the wait for JetStream to acknowledge a batch (default 10s).
	AckTimeout time.Duration
	// MaxBackoff caps the pause between retries after a failure (default 2s).
	MaxBackoff time.Duration
	Logger     *slog.Logger
	// Registerer receives the relay's metrics; nil exports none.
	Registerer prometheus.Registerer
}

func (o Options) withDefaults() Options {
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	o.BatchSize = min(o.BatchSize, eventstore.MaxReadLimit)
	if o.PollInterval <= 0 {
		o.PollInterval = 10 * time.Millisecond
	}
	if o.LockRetryInterval <= 0 {
		o.LockRetryInterval = 500 * time.Millisecond
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 10 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Relay publishes the event store's committed events to JetStream, in log
// order, exactly once per event as far as subscribers can tell. Any number of
// relays may run against one database: a PostgreSQL advisory lock lets one
// publish while the others stand by and take over when it goes away.
//
// Delivery rests on three things. The relay reads with ReadAll, so it sees
// events in commit order and never skips one that commits late. Every message
// carries the event id as Nats-Msg-Id, so a retried publish is dropped by
// JetStream, and the stream sequence of the previous event's message as
// Nats-Expected-Last-Sequence, so JetStream stores a message only right after
// its predecessor (bus.NewMessage says why not the previous id). And the
// checkpoint advances only after JetStream acknowledged a whole batch; when
// the relay (re)starts publishing it first lines the checkpoint up with the
// stream's last message, which is where publishing really got to.
type Relay struct {
	store   *eventstore.Store
	js      jetstream.JetStream
	opts    Options
	log     *slog.Logger
	metrics *metrics

	mu           sync.Mutex
	status       Status
	pendingSince time.Time
}

// New returns a relay from store to js; Run starts it.
func New(store *eventstore.Store, js jetstream.JetStream, opts Options) *Relay {
	opts = opts.withDefaults()
	return &Relay{
		store:   store.WithUpcasters(nil).WithRevealer(nil), // the bus carries events as stored
		js:      js,
		opts:    opts,
		log:     opts.Logger.With("component", "relay"),
		metrics: newMetrics(opts.Registerer),
	}
}

// errLockLost ends a term as the active relay.
var errLockLost = errors.New("relay lock lost")

// Run relays until ctx is done, then returns nil. Every failure on the way
// (PostgreSQL or NATS unreachable, lock lost) is logged and retried.
func (r *Relay) Run(ctx context.Context) error {
	r.log.Info("relay starting", "batch_size", r.opts.BatchSize, "poll_interval", r.opts.PollInterval)
	bo := backoff{min: 100 * time.Millisecond, max: r.opts.MaxBackoff}
	standbyLogged := false
	for ctx.Err() == nil {
		lock, err := tryPublisherLock(ctx, r.store.Pool())
		switch {
		case ctx.Err() != nil:
		case err != nil:
			r.failed(err)
			pause(ctx, bo.next())
		case lock == nil:
			if !standbyLogged {
				r.log.Info("relay standing by: another instance holds the publisher lock")
				standbyLogged = true
			}
			bo.reset()
			pause(ctx, r.opts.LockRetryInterval)
		default:
			standbyLogged = false
			bo.reset()
			err := r.lead(ctx, lock)
			r.setActive(false)
			lock.release()
			if ctx.Err() == nil {
				r.failed(err)
				pause(ctx, bo.next())
			}
		}
	}
	r.log.Info("relay stopped")
	return nil
}

// streamHead is where publishing has got to: the log position of the last
// event stored in the stream and the stream sequence of its message (the
// stream's last sequence, 0 when it is empty), which the next publish
// expects.
type streamHead struct {
	pos eventlog.Position
	seq uint64
}

// lead publishes while this instance holds the lock. It returns when ctx is
// done or the lock's session fails; other failures are retried in place.
func (r *Relay) lead(ctx context.Context, lock *publisherLock) error {
	cp, err := lock.loadCheckpoint(ctx)
	if err != nil {
		return err
	}
	r.setActive(true)
	r.setCheckpoint(cp)
	r.log.Info("relay active", "checkpoint", cp.GlobalPosition, "transaction_id", cp.TransactionID)

	var (
		head      = streamHead{pos: cp}
		aligned   = false
		bo        = backoff{min: 50 * time.Millisecond, max: r.opts.MaxBackoff}
		lastPing  = time.Now()
		pingEvery = max(r.opts.LockRetryInterval, 100*time.Millisecond)
	)
	retry := func(err error) {
		if ctx.Err() != nil {
			return // shutting down, not failing
		}
		r.failed(err)
		pause(ctx, bo.next())
	}
	for ctx.Err() == nil {
		if !aligned {
			h, err := r.align(ctx, lock, head)
			if err != nil {
				if lerr := lock.alive(ctx); lerr != nil {
					return fmt.Errorf("%w: %w", errLockLost, lerr)
				}
				retry(err)
				continue
			}
			head, aligned = h, true
		}
		readStart := time.Now()
		events, err := r.store.ReadAll(ctx, head.pos, r.opts.BatchSize)
		if err != nil {
			if lerr := lock.alive(ctx); lerr != nil {
				return fmt.Errorf("%w: %w", errLockLost, lerr)
			}
			retry(err)
			continue
		}
		if len(events) == 0 {
			r.caughtUp()
			if time.Since(lastPing) >= pingEvery {
				if err := lock.alive(ctx); err != nil {
					return fmt.Errorf("%w: %w", errLockLost, err)
				}
				lastPing = time.Now()
			}
			// Caught up: the whole interval, however long the read took, so
			// that an idle relay on a loaded database does not read back to back.
			pause(ctx, r.opts.PollInterval)
			continue
		}
		r.pending(events[0].RecordedAt)
		// Publish only while provably holding the lock.
		if err := lock.alive(ctx); err != nil {
			return fmt.Errorf("%w: %w", errLockLost, err)
		}
		lastPing = time.Now()
		next, err := r.publish(ctx, events, head)
		if err != nil {
			// Part of the batch may be stored: find out where the stream ends.
			aligned = false
			retry(err)
			continue
		}
		if err := lock.saveCheckpoint(ctx, next.pos); err != nil {
			return fmt.Errorf("%w: %w", errLockLost, err)
		}
		head = next
		bo.reset()
		r.published(next.pos)
		if len(events) < r.opts.BatchSize {
			pause(ctx, pollWait(r.opts.PollInterval, time.Since(readStart)))
		}
	}
	return nil
}

func (r *Relay) setActive(active bool) {
	r.mu.Lock()
	r.status.Active = active
	r.pendingSince = time.Time{}
	r.mu.Unlock()
	if active {
		r.metrics.active.Set(1)
	} else {
		r.metrics.active.Set(0)
	}
}

func (r *Relay) setCheckpoint(p eventlog.Position) {
	r.mu.Lock()
	r.status.Checkpoint = p
	r.mu.Unlock()
	r.metrics.checkpoint.Set(float64(p.GlobalPosition))
}

func (r *Relay) pending(since time.Time) {
	r.mu.Lock()
	if r.pendingSince.IsZero() {
		r.pendingSince = since
	}
	r.mu.Unlock()
}

func (r *Relay) caughtUp() {
	r.mu.Lock()
	r.pendingSince = time.Time{}
	r.status.LastError = ""
	r.mu.Unlock()
}

func (r *Relay) published(p eventlog.Position) {
	r.mu.Lock()
	r.status.Checkpoint = p
	r.status.LastPublishAt = time.Now()
	r.status.LastError = ""
	// The next batch sets it again from its first event.
	r.pendingSince = time.Time{}
	r.mu.Unlock()
	r.metrics.checkpoint.Set(float64(p.GlobalPosition))
}

func (r *Relay) failed(err error) {
	if err == nil {
		return
	}
	r.log.Warn("relay: will retry", "error", err)
	r.mu.Lock()
	r.status.LastError = err.Error()
	r.status.LastErrorAt = time.Now()
	r.mu.Unlock()
}

// backoff doubles a pause from min up to max.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// pollWait is what is left of the poll interval once a read that found
// events and the publishing after it took elapsed: a cycle that took longer
// (a busy machine: 25–40 ms measured at 200 VM commands/s) is followed by the
// next read at once instead of adding the whole interval to every event's
// wait (issue 16).
func pollWait(interval, elapsed time.Duration) time.Duration {
	return max(interval-elapsed, 0)
}

// pause waits for d or until ctx is done.
func pause(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
