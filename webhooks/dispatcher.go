// Package webhooks delivers events to webhook endpoints (docs/EVENTS.md,
// "Webhooks"): each endpoint reads through a durable JetStream consumer of
// its own on ACCOUNTDB_EVENTS, filtered on its tenant's subjects, with one
// message outstanding at a time (in stream order, at least once); failed
// attempts are retried with exponential backoff and jitter for about a day,
// then the endpoint is disabled with an event saying why. Deliveries are
// signed by the Standard Webhooks scheme and sent only to addresses the
// Guard allows.
package webhooks

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

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
	// AckWait is how long a message may stay unanswered before JetStream
	// hands it out again (a dispatcher that died mid-delivery); default
	// 2×Timeout+10 s.
	AckWait time.Duration
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
	o.AckWait = cmp.Or(o.AckWait, 2*o.Timeout+10*time.Second)
	if o.Backoff == (Backoff{}) {
		o.Backoff = DefaultBackoff
	}
	o.PollInterval = cmp.Or(o.PollInterval, time.Second)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Dispatcher runs one worker per enabled endpoint. Every replica of the
// core runs one: workers of the same endpoint share its durable consumer,
// which hands out one message at a time, so order holds across replicas.
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

	mu      sync.Mutex
	workers map[uuid.UUID]*worker
	// unopened: the version of each endpoint whose secret would not open,
	// so that it is logged once, not every round.
	unopened map[uuid.UUID]int64
}

// New returns a dispatcher.
func New(js jetstream.JetStream, store *Store, disabler Disabler, opener Opener, events EventReader, opts Options) *Dispatcher {
	opts = opts.withDefaults()
	return &Dispatcher{js: js, store: store, disabler: disabler, opener: opener, events: events, opts: opts,
		client: newClient(opts.Guard, opts.Timeout), log: opts.Logger, now: time.Now,
		recorder: newRecorder(store, opts.Logger), bodies: newBodies(opts.Revealer), workers: map[uuid.UUID]*worker{}, unopened: map[uuid.UUID]int64{}}
}

// Run delivers until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); d.recorder.run(ctx) }()
	defer func() {
		d.mu.Lock()
		for _, w := range d.workers {
			w.stop()
		}
		d.mu.Unlock()
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

// reconcile starts a worker for each enabled endpoint, stops those of
// endpoints disabled or deleted, replaces those whose consumer changed
// (a replay), and deletes consumers no endpoint has: with sweep (now and
// then, for those another replica or an earlier run left), and whenever
// this one replaced or dropped a worker.
func (d *Dispatcher) reconcile(ctx context.Context, sweep bool) error {
	eps, err := d.store.Endpoints(ctx)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[uuid.UUID]bool{}
	for _, e := range eps {
		want[consumerName(e)] = true
		if !e.Enabled {
			continue
		}
		seen[e.ID] = true
		w := d.workers[e.ID]
		if w != nil && w.consumer == consumerName(e) && w.endpoint.Load().Version == e.Version {
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
		if w != nil && w.consumer == consumerName(e) {
			// A new version, enabled: it was re-enabled (perhaps between two
			// rounds, so the worker was never stopped) or changed; a worker
			// that had given up delivers again.
			w.endpoint.Store(live)
			w.parked.Store(false)
			continue
		}
		if w != nil {
			w.stop()
			sweep = true // a replay: the old generation's consumer goes now
		}
		d.workers[e.ID] = d.startWorker(ctx, live)
	}
	for id, w := range d.workers {
		if !seen[id] {
			w.stop()
			delete(d.workers, id)
			sweep = sweep || !slices.ContainsFunc(eps, func(e Endpoint) bool { return e.ID == id }) // deleted
		}
	}
	if sweep {
		d.sweep(ctx, want)
	}
	return nil
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
