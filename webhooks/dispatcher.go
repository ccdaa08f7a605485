// Package webhooks delivers events to webhook endpoints (docs/EVENTS.md,
// "Webhooks"): each endpoint has a worker of its own reading
// ACCOUNTDB_EVENTS, filtered on its tenant's subjects, from the endpoint's
// durable cursor (webhook_cursors), delivering one event at a time in
// stream order and saving the cursor after (at least once): the workers of
// one subject that have caught up share one consumer (feed.go), never
// waiting for each other; failed attempts are retried with exponential
// backoff and jitter for about a day, then the endpoint is disabled with an
// event saying why. One replica
// dispatches an endpoint at a time (shard locks, shards.go); any may.
// Deliveries are signed by the Standard Webhooks scheme and sent only to
// addresses the Guard allows.
package webhooks

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// Disabler records that delivery to an endpoint gave up
// (commands.Handler.DisableWebhook); domain.ErrWebhookNotEnabled when it
// is deleted or disabled already.
type Disabler interface {
	DisableWebhook(ctx context.Context, tenant, id uuid.UUID, reason string, position int64) error
}

// Opener opens a sealed secret (vault.Vault).
type Opener interface {
	Open(sealed, additional string) (string, error)
}

// EventReader reads one event of a tenant by its global position (for
// redeliveries); false when there is none.
type EventReader interface {
	EventAt(ctx context.Context, tenant uuid.UUID, position int64) (eventlog.Event, bool, error)
}

// Options tune the dispatcher; zero values take the defaults.
type Options struct {
	// Timeout bounds one attempt (default 10 s).
	Timeout time.Duration
	// Backoff is the retry schedule (default DefaultBackoff).
	Backoff Backoff
	// PollInterval is how often endpoints and redeliveries are re-read
	// (default 1 s).
	PollInterval time.Duration
	// Guard decides which addresses may be reached.
	Guard  Guard
	Logger *slog.Logger
	// Revealer opens events' sealed personal values before they are
	// delivered (the bus carries the log's ciphertext; see package
	// privacy); nil delivers them as carried.
	Revealer Revealer
}

// Revealer opens events' sealed personal values (privacy.Revealer).
// Generation changes when keys were destroyed: bodies revealed at another
// generation are encoded again.
type Revealer interface {
	Reveal(ctx context.Context, evs []eventlog.Event) error
	Generation() uint64
}

func (o Options) withDefaults() Options {
	o.Timeout = cmp.Or(o.Timeout, 10*time.Second)
	if o.Backoff == (Backoff{}) {
		o.Backoff = DefaultBackoff
	}
	o.PollInterval = cmp.Or(o.PollInterval, time.Second)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Dispatcher runs one worker per enabled endpoint of the shards it holds.
// Every replica of the core runs one; the shard locks make one of them
// dispatch each endpoint, and the saved cursors let another take over.
type Dispatcher struct {
	js       jetstream.JetStream
	store    *Store
	disabler Disabler
	opener   Opener
	events   EventReader
	opts     Options
	client   *http.Client
	log      *slog.Logger
	now      func() time.Time
	recorder *recorder
	bodies   *bodies
	feeds    *feeds

	mu      sync.Mutex
	shards  shards
	workers map[uuid.UUID]*worker
	// unopened: the version of each endpoint whose secret would not open,
	// so that it is logged once, not every round.
	unopened map[uuid.UUID]int64
}

// New returns a dispatcher.
func New(js jetstream.JetStream, store *Store, disabler Disabler, opener Opener, events EventReader, opts Options) *Dispatcher {
	opts = opts.withDefaults()
	d := &Dispatcher{js: js, store: store, disabler: disabler, opener: opener, events: events, opts: opts,
		client: newClient(opts.Guard, opts.Timeout), log: opts.Logger, now: time.Now,
		recorder: newRecorder(store, opts.Logger), bodies: newBodies(opts.Revealer), shards: shards{pool: store.pool}, workers: map[uuid.UUID]*worker{}, unopened: map[uuid.UUID]int64{}}
	d.feeds = &feeds{d: d, m: map[string]*feed{}}
	return d
}

// Reading is how many endpoints' workers have started reading the stream
// (for the bench, which waits for all of them before appending).
func (d *Dispatcher) Reading() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, w := range d.workers {
		if w.reading.Load() {
			n++
		}
	}
	return n
}

// Run delivers until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.recorder.run(ctx) }()
	go func() { defer wg.Done(); d.saveCursorsEvery(ctx, flushEvery) }()
	defer func() {
		d.mu.Lock()
		d.stopWorkers(func(*worker) bool { return true })
		d.shards.close()
		d.mu.Unlock()
		d.feeds.wait() // each stops with its last worker
		wg.Wait()
	}()
	t := time.NewTicker(d.opts.PollInterval)
	defer t.Stop()
	for rounds := 0; ; rounds++ {
		if err := d.reconcile(ctx, rounds%60 == 0); err != nil && ctx.Err() == nil {
			d.log.Warn("webhooks: reading endpoints", "err", err)
		}
		if err := d.redeliver(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("webhooks: redeliveries", "err", err)
		}
		if rounds%3600 == 1 {
			d.prune(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// reconcile takes the free shards, starts a worker for each enabled
// endpoint of the shards held, stops those of endpoints disabled,
// deleted, replayed (a new generation starts afresh) or of a shard lost,
// and with sweep (now and then) drops what deleted endpoints left.
func (d *Dispatcher) reconcile(ctx context.Context, sweep bool) error {
	eps, err := d.store.Endpoints(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	held, err := d.shards.acquire(ctx)
	if err != nil {
		d.stopWorkers(func(*worker) bool { return true }) // another replica may hold them now
		return err
	}
	keep := map[uuid.UUID]bool{}
	var start []*liveEndpoint
	for _, e := range eps {
		if !e.Enabled || !held[shardOf(e.ID)] {
			continue
		}
		w := d.workers[e.ID]
		if w != nil && w.generation == e.Generation && w.endpoint.Load().Version == e.Version {
			keep[e.ID] = true
			continue // unchanged: its secrets stay opened
		}
		if v, failed := d.unopened[e.ID]; failed && v == e.Version {
			continue
		}
		live, err := d.open(e)
		if err != nil {
			d.unopened[e.ID] = e.Version
			d.log.Error("webhooks: cannot open the endpoint's secret (another secrets key?); rotate it to deliver again",
				"webhook", e.ID, "tenant", e.Tenant, "err", err)
			continue
		}
		delete(d.unopened, e.ID)
		if w != nil && w.generation == e.Generation {
			// A new version, enabled: it was re-enabled (perhaps between two
			// rounds, so the worker was never stopped) or changed; a worker
			// that had given up delivers again.
			w.endpoint.Store(live)
			w.parked.Store(false)
			keep[e.ID] = true
			continue
		}
		start = append(start, live)
	}
	d.stopWorkers(func(w *worker) bool { return !keep[w.id] })
	if err := d.startWorkers(ctx, start); err != nil {
		return err
	}
	if sweep {
		d.sweep(ctx, eps)
	}
	return nil
}

// startWorkers starts eps' workers, each from its endpoint's cursor.
func (d *Dispatcher) startWorkers(ctx context.Context, eps []*liveEndpoint) error {
	if len(eps) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(eps))
	for i, e := range eps {
		ids[i] = e.ID
	}
	cursors, err := d.store.Cursors(ctx, ids)
	if err != nil {
		return err
	}
	for _, e := range eps {
		var from uint64
		if c, ok := cursors[e.ID]; ok && c.generation == e.Generation {
			from = c.seq
		} else {
			from = d.legacyAckFloor(ctx, e.Endpoint)
		}
		d.workers[e.ID] = d.startWorker(ctx, e, from)
	}
	return nil
}

// stopWorkers stops the workers which, then saves their cursors (so that
// whoever dispatches their endpoints next resumes just after them).
// Called with d.mu held.
func (d *Dispatcher) stopWorkers(which func(*worker) bool) {
	var stopped []*worker
	for id, w := range d.workers {
		if which(w) {
			w.stop()
			delete(d.workers, id)
			stopped = append(stopped, w)
		}
	}
	d.saveCursors(context.Background(), stopped)
}

// saveCursorsEvery saves the workers' cursors that moved, every period.
func (d *Dispatcher) saveCursorsEvery(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.mu.Lock()
		ws := make([]*worker, 0, len(d.workers))
		for _, w := range d.workers {
			ws = append(ws, w)
		}
		d.mu.Unlock()
		d.saveCursors(ctx, ws)
	}
}

// saveCursors writes the cursors of ws that moved since last saved. A
// cursor lost (the process died first) costs deliveries made again, with
// the same webhook-id: at least once.
func (d *Dispatcher) saveCursors(ctx context.Context, ws []*worker) {
	var cs []cursor
	var moved []*worker
	for _, w := range ws {
		if seq := w.delivered.Load(); seq > w.saved.Load() {
			cs = append(cs, cursor{webhook: w.id, generation: w.generation, seq: seq})
			moved = append(moved, w)
		}
	}
	if len(cs) == 0 {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.store.SaveCursors(sctx, cs); err != nil {
		d.log.Warn("webhooks: saving cursors", "n", len(cs), "err", err)
		return
	}
	for i, w := range moved {
		w.saved.Store(cs[i].seq)
	}
}

// prune deletes delivery records past DeliveryRetention, tenant by tenant
// (each in its own scope), a bounded number per tenant each time.
func (d *Dispatcher) prune(ctx context.Context) {
	tenants, err := d.store.DeliveryTenants(ctx)
	if err != nil {
		return
	}
	for _, t := range tenants {
		if _, err := d.store.Prune(ctx, t, d.now().Add(-DeliveryRetention), 10_000); err != nil && ctx.Err() == nil {
			d.log.Warn("webhooks: pruning delivery records", "tenant", t, "err", err)
		}
	}
}

// legacyAckFloor is where e's durable consumer of the design before
// cursors (webhook_<id>_<generation>, swept afterwards) had got to, so that
// an upgrade carries on from there rather than from e's creation; 0 when
// there is none.
func (d *Dispatcher) legacyAckFloor(ctx context.Context, e Endpoint) uint64 {
	name := fmt.Sprintf("%s%s_%d", legacyConsumerPrefix, strings.ReplaceAll(e.ID.String(), "-", ""), e.Generation)
	c, err := d.js.Consumer(ctx, bus.StreamName, name)
	if err != nil {
		return 0
	}
	return c.CachedInfo().AckFloor.Stream
}
