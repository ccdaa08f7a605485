package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
)

// bench holds what the phases share.
type bench struct {
	cfg    config
	db     *benchDB
	rep    *report
	tenant uuid.UUID
	actor  uuid.UUID
}

// The event every benchmark appends, and pgbench inserts: a small, typical
// payload (a VM's spec), one event per command.
const (
	benchStreamType = "bench"
	benchEventType  = "bench_appended"
	benchEventData  = `{"vmid":4242,"name":"bench-vm","cores":2,"memory_mb":2048,"node":"pve1"}`
)

// loadResult is one run of concurrent single-event appends.
type loadResult struct {
	Writers  int
	Appends  int
	Elapsed  time.Duration
	P50, P99 time.Duration
	Max      time.Duration
	// CPU per append of this process and of the store's backends.
	ClientCPU, PgCPU time.Duration
	lat              []time.Duration
}

func (r loadResult) Rate() float64 { return float64(r.Appends) / r.Elapsed.Seconds() }

// appendCommand is one single-event command, as a command handler issues it:
// its own command id (idempotency row), actor and a fresh event id.
func (b *bench) appendCommand(stream eventlog.StreamID, eventID uuid.UUID) eventstore.Append {
	return eventstore.Append{
		Stream:    stream,
		TenantID:  b.tenant,
		Expected:  eventstore.Any(),
		CommandID: uuid.New(),
		ActorID:   b.actor,
		Events: []eventstore.NewEvent{{
			ID:   eventID,
			Type: benchEventType,
			Data: json.RawMessage(benchEventData),
		}},
	}
}

// appendLoad runs writers concurrent writers, each appending to its own stream
// as fast as it can (or as limiter allows), for d. onAppend, if set, hears of
// every event with the moment its append returned, i.e. just after commit.
func (b *bench) appendLoad(ctx context.Context, label string, writers int, d time.Duration,
	limiter *rate.Limiter, onAppend func(id uuid.UUID, committed time.Time)) (loadResult, error) {
	var done atomic.Int64
	stopProgress := startProgress(label, d, func() string { return fmt.Sprintf("%d appends", done.Load()) })
	defer stopProgress()

	cpu := b.startCPU(ctx)
	start := time.Now()
	deadline := start.Add(d)
	latencies := make([][]time.Duration, writers)
	g, gctx := errgroup.WithContext(ctx)
	for w := range writers {
		g.Go(func() error {
			stream, err := eventlog.NewStreamID(benchStreamType, uuid.New())
			if err != nil {
				return err
			}
			lat := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) && gctx.Err() == nil {
				if limiter != nil {
					if err := limiter.Wait(gctx); err != nil {
						break
					}
				}
				id := uuid.Must(uuid.NewV7())
				t0 := time.Now()
				if _, err := b.db.store.Append(gctx, b.appendCommand(stream, id)); err != nil {
					if gctx.Err() != nil {
						break
					}
					return fmt.Errorf("append: %w", err)
				}
				now := time.Now()
				lat = append(lat, now.Sub(t0))
				done.Add(1)
				if onAppend != nil {
					onAppend(id, now)
				}
			}
			latencies[w] = lat
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return loadResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return loadResult{}, err
	}
	all := slices.Concat(latencies...)
	res := loadResult{Writers: writers, Appends: len(all), Elapsed: time.Since(start), lat: all}
	res.P50, res.P99, res.Max = percentiles(all)
	res.ClientCPU, res.PgCPU = cpu.per(len(all))
	return res, nil
}

// merge adds another run at the same level.
func (r loadResult) merge(o loadResult) loadResult {
	if n := r.Appends + o.Appends; n > 0 {
		r.ClientCPU = (r.ClientCPU*time.Duration(r.Appends) + o.ClientCPU*time.Duration(o.Appends)) / time.Duration(n)
		r.PgCPU = (r.PgCPU*time.Duration(r.Appends) + o.PgCPU*time.Duration(o.Appends)) / time.Duration(n)
	}
	r.Appends += o.Appends
	r.Elapsed += o.Elapsed
	r.lat = append(r.lat, o.lat...)
	r.P50, r.P99, r.Max = percentiles(r.lat)
	return r
}

// percentiles returns the median, the 99th percentile and the maximum.
func percentiles(ds []time.Duration) (p50, p99, maxd time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return at(0.50), at(0.99), ds[len(ds)-1]
}

// appendPhase is figures 1 and 2: at each level, in rounds, our appends, then
// pgbench running the same SQL, then pgbench's plain durable INSERT of the
// same payload (the physical baseline: what the disk and the server allow for
// one row per transaction, with none of the event store's guarantees).
func (b *bench) appendPhase(ctx context.Context) error {
	b.tenant, b.actor = uuid.New(), uuid.New()
	if b.cfg.Warmup > 0 {
		if _, err := b.appendLoad(ctx, "warm-up", 8, b.cfg.Warmup, nil, nil); err != nil {
			return err
		}
	}
	var scripts pgbenchScripts
	if !b.cfg.SkipPgbench {
		if err := b.db.createPlainInsertTable(ctx); err != nil {
			return err
		}
		var cleanup func()
		var err error
		scripts, cleanup, err = writePgbenchScripts(b.tenant, b.actor)
		if err != nil {
			return err
		}
		defer cleanup()
	}
	// Each level alternates ours and pgbench's in rounds, so that a change in
	// the machine's load during the level (it may be shared) hits all alike.
	slice := b.cfg.Duration / time.Duration(b.cfg.Rounds)
	for _, w := range b.cfg.Writers {
		var lv appendLevel
		for r := range b.cfg.Rounds {
			stopProfile := func() {}
			if r == 0 && b.cfg.AppendCPUProfile != "" {
				var err error
				if stopProfile, err = startCPUProfile(fmt.Sprintf("%s.w%d", b.cfg.AppendCPUProfile, w)); err != nil {
					return err
				}
			}
			stopWaits := sampleWaits(ctx, b.db.adminURL, appApplicationName)
			ours, err := b.appendLoad(ctx, fmt.Sprintf("append, %d writers, round %d/%d", w, r+1, b.cfg.Rounds), w, slice, nil, nil)
			lv.Waits = lv.Waits.merge(stopWaits())
			stopProfile()
			if err != nil {
				return err
			}
			if r == 0 {
				lv.Ours = ours
			} else {
				lv.Ours = lv.Ours.merge(ours)
			}
			if b.cfg.SkipPgbench {
				continue
			}
			for _, run := range []struct {
				script string
				into   **pgbenchResult
			}{{scripts.sameSQL, &lv.Pgbench}, {scripts.plainInsert, &lv.Plain}} {
				pg, err := runPgbench(ctx, b.cfg.PgbenchPath, run.script, b.db.appURL, w, slice)
				if err != nil {
					return err
				}
				if *run.into == nil {
					*run.into = &pg
				} else {
					(*run.into).merge(pg)
				}
			}
		}
		lv.Ours.lat = nil
		b.rep.addAppendLevel(lv)
	}
	return b.loadPhase(ctx)
}
