package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// waitProfile is what the store's backends were doing, sampled from
// pg_stat_activity while a load ran: a poor man's profiler that says whether
// appends wait on the WAL, on locks or on the CPU (issue 16 asked where the
// time goes before anything changed).
type waitProfile struct {
	Samples int            // pg_stat_activity snapshots taken
	Counts  map[string]int // backend-observations by "state wait_event_type:wait_event"
}

// waitSampleEvery is the pause between snapshots; each costs one query on the
// administrator's own connection.
const waitSampleEvery = 10 * time.Millisecond

// sampleWaits samples the backends of the bench database whose
// application_name is app until ctx ends, on a connection of its own (the
// caller's admin connection stays free). stop returns the profile.
func sampleWaits(ctx context.Context, adminURL, app string) (stop func() waitProfile) {
	ctx, cancel := context.WithCancel(ctx)
	p := waitProfile{Counts: map[string]int{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		t := time.NewTicker(waitSampleEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rows, err := conn.Query(ctx, `SELECT state || ' ' || coalesce(wait_event_type || ':' || wait_event, 'CPU')
				FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND state <> 'idle'`, app)
			if err != nil {
				return
			}
			states, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return
			}
			p.Samples++
			for _, s := range states {
				p.Counts[s]++
			}
		}
	}()
	return func() waitProfile {
		cancel()
		wg.Wait()
		return p
	}
}

// top lists the n most frequent observations as "wait 41%", shares of all
// non-idle backend observations, and the mean number of busy backends.
func (p waitProfile) top(n int) string {
	if p.Samples == 0 {
		return "no samples"
	}
	type kv struct {
		k string
		v int
	}
	var all []kv
	total := 0
	for k, v := range p.Counts {
		all = append(all, kv{k, v})
		total += v
	}
	if total == 0 {
		return fmt.Sprintf("%d samples, no busy backend", p.Samples)
	}
	slices.SortFunc(all, func(a, b kv) int { return b.v - a.v })
	var parts []string
	for _, e := range all[:min(n, len(all))] {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", e.k, 100*float64(e.v)/float64(total)))
	}
	return fmt.Sprintf("%.1f busy backends on average over %d samples: %s",
		float64(total)/float64(p.Samples), p.Samples, strings.Join(parts, ", "))
}

// merge adds another run's samples.
func (p waitProfile) merge(o waitProfile) waitProfile {
	if p.Counts == nil {
		p.Counts = map[string]int{}
	}
	p.Samples += o.Samples
	for k, v := range o.Counts {
		p.Counts[k] += v
	}
	return p
}

func (p waitProfile) print(out io.Writer, label string) {
	fmt.Fprintf(out, "   %s: %s\n", label, p.top(6))
}
