package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of RunnerOptions.
const (
	DefaultStream        = bus.StreamName
	DefaultFilterSubject = bus.StreamSubjects
	DefaultBatchSize     = 256
	DefaultFetchWait     = 5 * time.Second
	DefaultAckWait       = 30 * time.Second
	DefaultGapDelay      = time.Second
	DefaultMinRetryDelay = 100 * time.Millisecond
	DefaultMaxRetryDelay = 30 * time.Second
	DefaultApplyTimeout  = 30 * time.Second
)

// RunnerOptions tunes a Runner; zero values take the defaults.
type RunnerOptions struct {
	// Stream and FilterSubject select what the durable consumer reads. The
	// filter must cover every event, or the prev-position chain breaks.
	Stream        string
	FilterSubject string
	// BatchSize bounds the events applied in one transaction.
	BatchSize int
	// FetchWait is how long one pull request stays open waiting for messages.
	FetchWait time.Duration
	// AckWait is how long JetStream waits for an ack before redelivering.
	AckWait time.Duration
	// GapDelay is how long a message delivered ahead of its predecessor is
	// handed back to JetStream before it is redelivered.
	GapDelay time.Duration
	// MinRetryDelay and MaxRetryDelay bound the backoff after a failure.
	MinRetryDelay time.Duration
	MaxRetryDelay time.Duration
	// ApplyTimeout bounds one batch's transaction; a batch in flight finishes
	// (within it) even when Run's context is cancelled.
	ApplyTimeout time.Duration
	// Upcasters bring each delivered event to its type's latest version
	// before Apply: the bus carries events as stored (docs/EVENTS.md). Use the
	// registry the rebuild's store reads through. nil applies them as stored.
	Upcasters *eventstore.Upcasters
	// Revealer opens each delivered event's sealed personal values (the bus
	// carries the log's ciphertext, see privacy) before Upcasters and Apply;
	// nil applies them as carried.
	Revealer eventstore.Revealer
	// Metrics may be shared by runners; nil means unregistered metrics.
	Metrics *Metrics
	Logger  *slog.Logger
	// Leases, when set, lets this runner consume only while it holds its
	// projector's lease (one runner per projector across replicas); nil
	// consumes at once (one process, tests).
	Leases *Leases
	// LeaseRetryInterval is how often a standby tries to take the lease
	// (default 500ms): the longest a projector waits after its runner's
	// process died.
	LeaseRetryInterval time.Duration
	// Log, when set, is where a runner that finds a gap (the next event not
	// delivered yet: redeliveries after a fault, a runner that died holding
	// messages) reads the missing events, in batches, instead of waiting
	// for JetStream to redeliver them. It must read through the same
	// upcasters as Upcasters (app.NewStore does).
	Log *eventstore.Store
}

func (o RunnerOptions) withDefaults() RunnerOptions {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.FilterSubject == "" {
		o.FilterSubject = DefaultFilterSubject
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	def(&o.FetchWait, DefaultFetchWait)
	def(&o.AckWait, DefaultAckWait)
	def(&o.GapDelay, DefaultGapDelay)
	def(&o.MinRetryDelay, DefaultMinRetryDelay)
	def(&o.MaxRetryDelay, DefaultMaxRetryDelay)
	def(&o.ApplyTimeout, DefaultApplyTimeout)
	def(&o.LeaseRetryInterval, 500*time.Millisecond)
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Runner feeds one projector from its durable JetStream consumer.
type Runner struct {
	pool    *pgxpool.Pool
	js      jetstream.JetStream
	p       Projector
	opts    RunnerOptions
	log     *slog.Logger
	metrics projectorMetrics

	reacts     func(eventType string) bool // reactsTo(p)
	retryDelay time.Duration               // current backoff; touched by Run's goroutine only
	// cp is the checkpoint this runner last committed (when cpKnown), the
	// expected value of moveOverIgnored's compare-and-set; Run's goroutine
	// only.
	cp      eventlog.Position
	cpKnown bool
	stall   stallLog
	leading atomic.Bool // holds the lease (always, without Leases) and consumes

	// withholdAcks makes the runner commit batches but never ack or nak their
	// messages: a crash between commit and ack, for tests.
	withholdAcks bool
}

// NewRunner returns a runner of p. pool must connect as the service role:
// projectors write through the same row-level security as requests.
func NewRunner(pool *pgxpool.Pool, js jetstream.JetStream, p Projector, opts RunnerOptions) *Runner {
	opts = opts.withDefaults()
	return &Runner{
		pool:    pool,
		js:      js,
		p:       p,
		reacts:  reactsTo(p),
		opts:    opts,
		log:     opts.Logger.With("projector", p.Name()),
		metrics: opts.Metrics.forProjector(p.Name()),
	}
}

// Projector is the projector this runner feeds.
func (r *Runner) Projector() Projector { return r.p }

// Run consumes events until ctx is done, then returns nil. Failures (NATS or
// Postgres unavailable, a projector error) are logged and retried with
// exponential backoff; only an invalid projector is returned at once.
func (r *Runner) Run(ctx context.Context) error {
	if err := validate(r.p); err != nil {
		return err
	}
	r.retryDelay = r.opts.MinRetryDelay
	standbyLogged := false
	for {
		lead, held := ctx, true
		var release func()
		if r.opts.Leases != nil {
			var err error
			held, err = r.opts.Leases.TryAcquire(ctx, r.p.Name())
			if err != nil && ctx.Err() == nil {
				r.log.Warn("projector lease unavailable", "err", err)
			}
			if held {
				standbyLogged = false
				lead, release = r.holdLease(ctx)
			} else if !standbyLogged && err == nil {
				r.log.Info("projector standing by: another replica runs it")
				standbyLogged = true
			}
		}
		if !held {
			t := time.NewTimer(r.opts.LeaseRetryInterval)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		r.leading.Store(true)
		err := r.consume(lead)
		r.leading.Store(false)
		if release != nil {
			release()
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(context.Cause(lead), ErrLeaseLost) {
			r.log.Warn("projector lease lost; standing by", "err", context.Cause(lead))
			continue
		}
		r.log.Error("projector failed, retrying", "err", err, "retry_in", r.retryDelay)
		t := time.NewTimer(r.retryDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		r.retryDelay = min(2*r.retryDelay, r.opts.MaxRetryDelay)
	}
}

// Leading says whether this runner applies its projector now (holds its
// lease); a standby's replica leaves the projector's lag to the leader's
// /readyz.
func (r *Runner) Leading() bool { return r.leading.Load() }

// holdLease returns a context that ends, with ErrLeaseLost as its cause,
// when the lease's session stops answering, and the function that ends the
// term and releases the lease.
func (r *Runner) holdLease(ctx context.Context) (context.Context, func()) {
	lead, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-lead.Done():
				return
			case <-t.C:
				if err := r.opts.Leases.Check(lead, r.p.Name()); err != nil && lead.Err() == nil {
					cancel(err)
					return
				}
			}
		}
	}()
	return lead, func() {
		cancel(nil)
		<-done
		r.opts.Leases.Release(r.p.Name())
	}
}

func (r *Runner) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerName(r.p.Name()),
		Description:   "AccountDB projector " + r.p.Name(),
		FilterSubject: r.opts.FilterSubject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.opts.AckWait,
		MaxDeliver:    -1, // never give up on an event: the chain would break
		MaxAckPending: 4 * r.opts.BatchSize,
	}
}

// consume creates (or updates) the durable consumer and processes pull
// requests until an error or ctx's end.
func (r *Runner) consume(ctx context.Context) error {
	cons, err := r.js.CreateOrUpdateConsumer(ctx, r.opts.Stream, r.consumerConfig())
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", ConsumerName(r.p.Name()), r.opts.Stream, err)
	}
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, r.opts.FetchWait)
		batch, err := cons.Fetch(r.opts.BatchSize, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			return fmt.Errorf("fetch: %w", err)
		}
		err = r.drain(ctx, batch.Messages())
		cancel()
		if err != nil {
			return err
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("fetch: %w", err)
		}
	}
	return ctx.Err()
}

// drain applies a pull request's messages as they arrive: whatever is already
// buffered goes into one transaction, so a busy log gets full batches and a
// quiet one gets each event promptly.
func (r *Runner) drain(ctx context.Context, msgs <-chan jetstream.Msg) error {
	for {
		var chunk []jetstream.Msg
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			chunk = append(chunk, m)
		}
	more:
		for len(chunk) < r.opts.BatchSize {
			select {
			case m, ok := <-msgs:
				if !ok {
					break more
				}
				chunk = append(chunk, m)
			default:
				break more
			}
		}
		if err := r.process(ctx, chunk); err != nil {
			return err
		}
	}
}
