package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
)

// readResult is figure 3: the whole log read from Start in commit order.
type readResult struct {
	Seeded     int
	SeedTime   time.Duration
	Events     int
	Batch      int
	Calls      int
	Elapsed    time.Duration
	P50, P99   time.Duration // per ReadAll call
	EmptyPolls int
	// Waited is time spent in empty reads while events remained: an append
	// in flight held the log's watermark back. It is left out
	// of the rate, which measures the reader, and reported on its own.
	Waited time.Duration
}

func (r readResult) Rate() float64 { return float64(r.Events) / (r.Elapsed - r.Waited).Seconds() }

// maxWatermarkWait bounds how long the read may wait on other transactions.
const maxWatermarkWait = time.Minute

// seedWriters append the ReadAll corpus in parallel, one stream each.
const seedWriters = 4

// seed appends n events in appends of MaxEventsPerAppend events.
func (b *bench) seed(ctx context.Context, n int) (time.Duration, error) {
	return b.seedEvents(ctx, fmt.Sprintf("seeding %d events", n), b.tenant, n, seedWriters, nil)
}

// seedEvents appends n events for tenant from writers writers in parallel,
// one stream each, in appends of MaxEventsPerAppend; decorate, if set, adds
// what each append carries besides its events.
func (b *bench) seedEvents(ctx context.Context, label string, tenant uuid.UUID, n, writers int,
	decorate func(*eventstore.Append)) (time.Duration, error) {
	var done atomic.Int64
	stop := startProgress(label, 0, func() string { return fmt.Sprintf("%d events", done.Load()) })
	defer stop()
	start := time.Now()
	per := (n + writers - 1) / writers
	g, gctx := errgroup.WithContext(ctx)
	for w := range writers {
		left := max(0, min(per, n-w*per))
		g.Go(func() error {
			stream := eventlog.StreamID{Type: benchStreamType, ID: uuid.New()}
			evs := make([]eventstore.NewEvent, eventstore.MaxEventsPerAppend)
			for i := range evs {
				evs[i] = eventstore.NewEvent{Type: benchEventType, Data: json.RawMessage(benchEventData)}
			}
			for left > 0 {
				k := min(left, eventstore.MaxEventsPerAppend)
				a := eventstore.Append{Stream: stream, TenantID: tenant, Expected: eventstore.Any(), ActorID: b.actor, Events: evs[:k]}
				if decorate != nil {
					decorate(&a)
				}
				if _, err := b.db.store.Append(gctx, a); err != nil {
					return fmt.Errorf("seed: %w", err)
				}
				left -= k
				done.Add(int64(k))
			}
			return nil
		})
	}
	err := g.Wait()
	return time.Since(start), err
}

func (b *bench) readAllPhase(ctx context.Context) error {
	res := readResult{Seeded: b.cfg.ReadEvents, Batch: b.cfg.ReadBatch}
	var err error
	if res.SeedTime, err = b.seed(ctx, b.cfg.ReadEvents); err != nil {
		return err
	}
	// A long-lived events table always has statistics (autovacuum analyzes it
	// as it grows); a table filled seconds ago has none, and without them the
	// planner mistakes how many rows follow a position. Measure the steady state.
	if _, err := b.db.admin.Exec(ctx, "ANALYZE events"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	total, err := b.db.countEvents(ctx)
	if err != nil {
		return err
	}
	if total == 0 {
		return nil // -read-events 0 and -skip-appends: nothing to read
	}
	var read atomic.Int64
	stop := startProgress(fmt.Sprintf("ReadAll of %d events", total), 0, func() string { return fmt.Sprintf("%d events", read.Load()) })
	defer stop()

	var lat []time.Duration
	pos := eventlog.Start
	start := time.Now()
	// Reading stops once the whole log has been seen. An append in flight can
	// hold the log's watermark back for a moment; such empty reads are counted
	// and their time included.
	for int(read.Load()) < total {
		if res.Waited > maxWatermarkWait {
			return fmt.Errorf("read all: stuck at %d of %d events for %s: a long append holds back the log's watermark", read.Load(), total, maxWatermarkWait)
		}
		t0 := time.Now()
		evs, err := b.db.store.ReadAll(ctx, pos, b.cfg.ReadBatch)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			res.EmptyPolls++
			time.Sleep(5 * time.Millisecond)
			res.Waited += time.Since(t0)
			continue
		}
		lat = append(lat, time.Since(t0))
		res.Calls++
		pos = evs[len(evs)-1].Position
		read.Add(int64(len(evs)))
	}
	res.Elapsed = time.Since(start)
	res.Events = int(read.Load())
	res.P50, res.P99, _ = percentiles(lat)
	b.rep.setRead(res)
	return nil
}
