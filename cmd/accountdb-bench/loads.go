package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
)

// Figure 2b: aggregate loads, as a command's load runs them
// (Store.FoldFromSnapshot: the latest snapshot, then the events after it).
// Issue 16 counted two statements per load in figure 5 (836 each in a
// 200-VM run) and five round trips; this measures what one load costs.
const (
	loadStreams      = 200 // streams loaded, chosen at random
	loadStreamEvents = 8   // events per stream: a VM's few, no snapshot
)

// loadsLevel is one run of concurrent loads.
type loadsLevel struct {
	Readers  int
	Loads    int
	Elapsed  time.Duration
	P50, P99 time.Duration
	// CPU of this process and of the store's PostgreSQL backends, per load.
	ClientCPU, PgCPU time.Duration
}

// loadPhase seeds loadStreams streams and loads them at each level of
// readers (the append levels' 1 and 8 writers), duration/rounds each.
func (b *bench) loadPhase(ctx context.Context) error {
	streams := make([]eventlog.StreamID, loadStreams)
	for i := range streams {
		st, err := eventlog.NewStreamID(benchStreamType, uuid.New())
		if err != nil {
			return err
		}
		a := b.appendCommand(st, uuid.Must(uuid.NewV7()))
		a.Expected = eventstore.NoStream()
		for range loadStreamEvents - 1 {
			a.Events = append(a.Events, eventstore.NewEvent{Type: benchEventType, Data: a.Events[0].Data})
		}
		if _, err := b.db.store.Append(ctx, a); err != nil {
			return fmt.Errorf("seed loads: %w", err)
		}
		streams[i] = st
	}
	d := b.cfg.Duration / time.Duration(max(1, b.cfg.Rounds))
	for _, readers := range []int{1, 8} {
		lv, err := b.loadRun(ctx, streams, readers, d)
		if err != nil {
			return err
		}
		b.rep.Loads = append(b.rep.Loads, lv)
	}
	return nil
}

func (b *bench) loadRun(ctx context.Context, streams []eventlog.StreamID, readers int, d time.Duration) (loadsLevel, error) {
	var done atomic.Int64
	stop := startProgress(fmt.Sprintf("loads, %d readers", readers), d, func() string { return fmt.Sprintf("%d loads", done.Load()) })
	defer stop()
	cpu := b.startCPU(ctx)
	start := time.Now()
	deadline := start.Add(d)
	lat := make([][]time.Duration, readers)
	sc := tenantdb.Tenant(b.tenant)
	g, gctx := errgroup.WithContext(ctx)
	for r := range readers {
		g.Go(func() error {
			for time.Now().Before(deadline) && gctx.Err() == nil {
				st := streams[rand.IntN(len(streams))]
				n := 0
				t0 := time.Now()
				_, _, err := b.db.store.FoldFromSnapshot(gctx, sc, st, 1, time.Time{},
					func(eventstore.Snapshot) error { return nil },
					func(eventlog.Event) error { n++; return nil })
				if err != nil {
					return fmt.Errorf("load %s: %w", st, err)
				}
				if n != loadStreamEvents {
					return fmt.Errorf("load %s: %d events, want %d", st, n, loadStreamEvents)
				}
				lat[r] = append(lat[r], time.Since(t0))
				done.Add(1)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return loadsLevel{}, err
	}
	lv := loadsLevel{Readers: readers, Elapsed: time.Since(start)}
	all := slices.Concat(lat...)
	lv.Loads = len(all)
	lv.P50, lv.P99, _ = percentiles(all)
	lv.ClientCPU, lv.PgCPU = cpu.per(lv.Loads)
	return lv, nil
}

// cpuSince is the CPU time of this process and of the store's PostgreSQL
// backends (the pool's, by application_name) at the start of a run: CPU per
// unit of work is steadier than rates on a shared machine.
type cpuSince struct {
	b      *bench
	ctx    context.Context
	client time.Duration
	pg     map[int]time.Duration
}

func (b *bench) startCPU(ctx context.Context) *cpuSince {
	c := &cpuSince{b: b, ctx: ctx, client: processCPU(), pg: map[int]time.Duration{}}
	for _, pid := range serverBackendsOf(ctx, b.db, appApplicationName) {
		c.pg[pid] = procCPUTime(pid)
	}
	return c
}

// per is the CPU used since the start, per unit of n; a backend that
// appeared meanwhile counts from zero.
func (c *cpuSince) per(n int) (client, pg time.Duration) {
	client = processCPU() - c.client
	for _, pid := range serverBackendsOf(c.ctx, c.b.db, appApplicationName) {
		pg += procCPUTime(pid) - c.pg[pid]
	}
	if n == 0 {
		return 0, 0
	}
	return client / time.Duration(n), pg / time.Duration(n)
}

// serverBackendsOf lists the pids of the bench database's backends whose
// application_name is app (the store's pool: appApplicationName).
func serverBackendsOf(ctx context.Context, db *benchDB, app string) []int {
	rows, err := db.admin.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`, app)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			out = append(out, pid)
		}
	}
	return out
}

func printLoads(out io.Writer, levels []loadsLevel) {
	if len(levels) == 0 {
		return
	}
	fmt.Fprintf(out, "2b. Loads (Store.FoldFromSnapshot, %d-event streams without a snapshot, %d streams at random)\n", loadStreamEvents, loadStreams)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "readers\tloads\tloads/s\tp50\tp99\tCPU/load bench\tCPU/load PostgreSQL\t")
	for _, l := range levels {
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t\n", l.Readers, l.Loads, float64(l.Loads)/l.Elapsed.Seconds(),
			ms(l.P50), ms(l.P99), us(l.ClientCPU), us(l.PgCPU))
	}
	tw.Flush()
	fmt.Fprintln(out)
}
