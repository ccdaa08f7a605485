package main

// Figure 11: webhooks. Endpoints over several tenants, each with its own
// worker reading from its cursor, while events are appended at a steady rate; some
// endpoints time out on every attempt. The figure is the delivery lag of
// the healthy endpoints, from the append's commit to the receiver having
// the request, and every healthy endpoint must get every event of its
// tenant, in order: a dead endpoint must not delay another.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/webhooks"
	"github.com/jackc/pgx/v5"
	"golang.org/x/time/rate"
)

// barWebhookLagP99 is the bar of figure 11 (docs/BENCHMARKS.md).
const barWebhookLagP99 = 250 * time.Millisecond

type webhookConfig struct {
	Skip      bool
	Endpoints int
	Tenants   int
	Dead      int
	Rate      float64
	Duration  time.Duration
	Timeout   time.Duration
}

func webhookFlags(fs *flag.FlagSet, c *webhookConfig) {
	fs.BoolVar(&c.Skip, "skip-webhooks", false, "skip the webhooks benchmark (figure 11)")
	fs.IntVar(&c.Endpoints, "webhook-endpoints", 100, "webhook endpoints, spread evenly over -webhook-tenants")
	fs.IntVar(&c.Tenants, "webhook-tenants", 10, "tenants the endpoints and the appends are spread over")
	fs.IntVar(&c.Dead, "webhook-dead", 10, "endpoints that time out on every attempt")
	fs.Float64Var(&c.Rate, "webhook-rate", 500, "events/s appended in all, spread evenly over the tenants")
	fs.DurationVar(&c.Duration, "webhook-duration", 10*time.Second, "how long events are appended")
	fs.DurationVar(&c.Timeout, "webhook-timeout", 2*time.Second, "the dispatcher's time-out per attempt (the dead endpoints never answer)")
}

func (c webhookConfig) validate() error {
	if c.Endpoints < 1 || c.Tenants < 1 || c.Tenants > c.Endpoints || c.Dead < 0 || c.Dead >= c.Endpoints || c.Rate <= 0 || c.Duration <= 0 || c.Timeout <= 0 {
		return errors.New("-webhook-endpoints, -webhook-tenants (at most the endpoints), -webhook-rate, -webhook-duration and -webhook-timeout must be positive, -webhook-dead below the endpoints")
	}
	return nil
}

type webhookResult struct {
	Endpoints, Tenants, Dead int
	TargetRate               float64
	Appended                 int
	AppendTime               time.Duration
	Deliveries, Expected     int
	DeadAttempts             int
	P50, P99, Max            time.Duration
	// The lag's stages (webhooks_stages.go): commit -> stream, stream -> receiver.
	RelayP50, RelayP99       time.Duration
	DispatchP50, DispatchP99 time.Duration
	Drain                    time.Duration
	Problems                 []string
}

// hookSink is the receivers' record: when each endpoint got each position.
type hookSink struct {
	mu   sync.Mutex
	got  map[int][]int64
	at   map[int][]time.Time
	dead int
}

func (b *bench) webhookPhase(ctx context.Context) (err error) {
	c := b.cfg.Webhooks
	res := &webhookResult{Endpoints: c.Endpoints, Tenants: c.Tenants, Dead: c.Dead, TargetRate: c.Rate}
	fmt.Printf("\n11. Webhooks: %d endpoints over %d tenants (%d time out on every attempt), %.0f events/s for %s\n",
		c.Endpoints, c.Tenants, c.Dead, c.Rate, c.Duration)
	core, err := startCore(ctx, b.cfg.DatabaseURL, func(cfg *app.Config) {
		cfg.DevLoopbackHTTP = true // http:// receivers on loopback, reached through the guard's loopback allowance
		cfg.Webhooks = webhooks.Options{Timeout: c.Timeout, PollInterval: 250 * time.Millisecond}
	})
	if err != nil {
		return err
	}
	defer func() {
		if serr := core.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	sys := core.sys

	sink := &hookSink{got: map[int][]int64{}, at: map[int][]time.Time{}}
	srv, url, err := sink.serve()
	if err != nil {
		return err
	}
	defer srv.Close()

	tenants := make([]*sseTenant, c.Tenants)
	endpointTenant := make([]*sseTenant, c.Endpoints)
	for i := range tenants {
		if tenants[i], err = sseNewTenant(ctx, sys, http.DefaultClient, 1000+i, 0); err != nil {
			return err
		}
	}
	for i := range c.Endpoints {
		t := tenants[i%len(tenants)]
		endpointTenant[i] = t
		path := fmt.Sprintf("%s/ok/%d", url, i)
		if i < c.Dead {
			path = fmt.Sprintf("%s/dead/%d", url, i)
		}
		u, types := path, []string{"bench_*"}
		if _, err := sys.Commands.CreateWebhook(ctx, commands.Actor{TenantID: t.id}, commands.Options{},
			commands.WebhookChange{URL: &u, EventTypes: &types}, false); err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
	}
	if err := waitReading(ctx, sys.Webhooks(), c.Endpoints); err != nil {
		return err
	}

	if path := os.Getenv("ACCOUNTDB_BENCH_CPUPROFILE"); path != "" { // where the time goes, for tuning
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	appendStart := time.Now()
	gctx, stopWriting := context.WithTimeout(ctx, c.Duration)
	defer stopWriting()
	var werr error
	var wmu sync.Mutex
	var writers sync.WaitGroup
	for _, t := range tenants {
		lim := rate.NewLimiter(rate.Limit(c.Rate/float64(len(tenants))), 1)
		for range sseWritersPerTenant {
			writers.Add(1)
			go func() {
				defer writers.Done()
				if err := t.write(gctx, sys.Store, lim); !errors.Is(err, context.DeadlineExceeded) {
					wmu.Lock()
					werr = errors.Join(werr, err)
					wmu.Unlock()
				}
			}()
		}
	}
	writers.Wait()
	res.AppendTime = time.Since(appendStart)
	if werr != nil {
		return werr
	}
	lastAppend := time.Now()
	for _, t := range tenants {
		rows, err := core.db.admin.Query(ctx, `SELECT global_position FROM events WHERE tenant_id = $1 AND event_type = 'bench_tick'
			ORDER BY transaction_id, global_position`, t.id)
		if err != nil {
			return err
		}
		if t.positions, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
			return err
		}
		res.Appended += len(t.positions)
	}
	for i := c.Dead; i < c.Endpoints; i++ {
		res.Expected += len(endpointTenant[i].positions)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if sink.count(c.Dead, c.Endpoints) >= res.Expected {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	stored, err := streamTimes(ctx, core.natsURL)
	if err != nil {
		return err
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	res.DeadAttempts = sink.dead
	var lags []time.Duration
	var stages stageLags
	var lastDelivery time.Time
	for i := c.Dead; i < c.Endpoints; i++ {
		t, got, at := endpointTenant[i], sink.got[i], sink.at[i]
		res.Deliveries += len(got)
		if len(got) != len(t.positions) {
			res.Problems = append(res.Problems, fmt.Sprintf("endpoint %d received %d events of %d", i, len(got), len(t.positions)))
		}
		for j := range min(len(got), len(t.positions)) {
			if got[j] != t.positions[j] {
				res.Problems = append(res.Problems, fmt.Sprintf("endpoint %d: event %d is position %d, want %d", i, j, got[j], t.positions[j]))
				break
			}
			lags = append(lags, at[j].Sub(t.committed[got[j]]))
			stages.add(t.committed[got[j]], stored[got[j]], at[j])
			if at[j].After(lastDelivery) {
				lastDelivery = at[j]
			}
		}
	}
	res.Drain = max(0, lastDelivery.Sub(lastAppend))
	res.P50, res.P99, res.Max = percentiles(lags)
	res.RelayP50, res.RelayP99, _ = percentiles(stages.relay)
	res.DispatchP50, res.DispatchP99, _ = percentiles(stages.dispatch)
	res.print(os.Stdout)
	if len(res.Problems) > 0 {
		return fmt.Errorf("webhooks: %d problems, first: %s", len(res.Problems), res.Problems[0])
	}
	return nil
}

// serve runs the receivers: /ok/<i> records the delivery (first arrival of
// each event; a retry is not a second one), /dead/<i> never answers.
func (s *hookSink) serve() (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ok/{i}", func(w http.ResponseWriter, r *http.Request) {
		var i int
		fmt.Sscan(r.PathValue("i"), &i)
		var p struct {
			Data struct {
				Position int64 `json:"position"`
			} `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		now := time.Now()
		s.mu.Lock()
		if n := len(s.got[i]); n == 0 || s.got[i][n-1] != p.Data.Position {
			s.got[i] = append(s.got[i], p.Data.Position)
			s.at[i] = append(s.at[i], now)
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /dead/{i}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.dead++
		s.mu.Unlock()
		<-r.Context().Done()
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, "http://" + ln.Addr().String(), nil
}

func (s *hookSink) count(from, to int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for i := from; i < to; i++ {
		n += len(s.got[i])
	}
	return n
}

// waitReading waits until the dispatcher has every endpoint's worker
// reading the stream (through a consumer of its own or its tenant's feed).
func waitReading(ctx context.Context, d *webhooks.Dispatcher, n int) error {
	if d == nil {
		return errors.New("the core runs no webhook dispatcher")
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if d.Reading() >= n {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the dispatcher did not read for %d endpoints within a minute", n)
}

func (r *webhookResult) print(out io.Writer) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "  appended\t%d events in %s (%.0f/s, target %.0f/s)\n", r.Appended, r.AppendTime.Round(time.Millisecond),
		float64(r.Appended)/r.AppendTime.Seconds(), r.TargetRate)
	fmt.Fprintf(w, "  delivered to healthy endpoints\t%d of %d (%.0f requests/s)\n", r.Deliveries, r.Expected, float64(r.Deliveries)/r.AppendTime.Seconds())
	fmt.Fprintf(w, "  attempts on the %d dead endpoints\t%d (each timed out)\n", r.Dead, r.DeadAttempts)
	fmt.Fprintf(w, "  lag commit -> receiver (healthy)\tp50 %s  p99 %s  max %s  (bar p99 <= %s: %s)\n", r.P50.Round(10*time.Microsecond),
		r.P99.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond), barWebhookLagP99, passFail(r.P99 <= barWebhookLagP99 && len(r.Problems) == 0))
	fmt.Fprintf(w, "  of which commit -> stream (relay)\tp50 %s  p99 %s\n", r.RelayP50.Round(10*time.Microsecond), r.RelayP99.Round(10*time.Microsecond))
	fmt.Fprintf(w, "  and stream -> receiver (workers)\tp50 %s  p99 %s\n", r.DispatchP50.Round(10*time.Microsecond), r.DispatchP99.Round(10*time.Microsecond))
	fmt.Fprintf(w, "  drain after the last append\t%s\n", r.Drain.Round(time.Millisecond))
	for i, p := range r.Problems {
		if i == 5 {
			fmt.Fprintf(w, "  …\t%d more\n", len(r.Problems)-5)
			break
		}
		fmt.Fprintf(w, "  problem\t%s\n", p)
	}
	w.Flush()
}
