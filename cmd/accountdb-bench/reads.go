package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/google/uuid"
)

// Figure 12: issue 16's reads. GET /v1/vms?limit=50 and GET /v1/vms/{id}
// with 100,000 VMs over 1,000 tenants, each request as one of the
// tenants' signed-in viewers, against the API in a process of its own
// (reads_server.go) over loopback:
//
//   - an open-loop sweep per route: requests sent on schedule at a rate
//     that grows by a factor per step until p99 passes the bar or the
//     server answers less than was asked; the figure is the highest rate
//     whose p99 is within the bar;
//   - a closed loop with many connections: the most the two cores answer;
//   - the server's RSS, and CPU per request of the server, its PostgreSQL
//     backends and the load generator;
//   - row-level security's cost: the same two queries with RLS and
//     without (reads_rls.go).
type readsConfig struct {
	Skip       bool
	Tenants    int
	PerTenant  int
	Step       time.Duration
	RateStart  float64
	RateFactor float64
	MaxSteps   int
	Workers    int
	Conns      int
	RLSIters   int
	ProfileDir string
}

// barReadP99 is the bar: p99 at the highest rate the machine allows.
const barReadP99 = 10 * time.Millisecond

func readsFlags(fs *flag.FlagSet, c *readsConfig) {
	fs.BoolVar(&c.Skip, "skip-reads", false, "skip the reads benchmark (figure 12)")
	fs.IntVar(&c.Tenants, "reads-tenants", 1000, "tenants of figure 12, one signed-in viewer each")
	fs.IntVar(&c.PerTenant, "reads-vms-per-tenant", 100, "VMs of each tenant in figure 12")
	fs.DurationVar(&c.Step, "reads-step", 4*time.Second, "how long each load level of figure 12 runs")
	fs.Float64Var(&c.RateStart, "reads-rate-start", 400, "the first open-loop rate (requests/s)")
	fs.Float64Var(&c.RateFactor, "reads-rate-factor", 1.3, "each open-loop rate is the previous one times this")
	fs.IntVar(&c.MaxSteps, "reads-max-steps", 12, "open-loop steps at most per route")
	fs.IntVar(&c.Workers, "reads-workers", 64, "connections of the open-loop generator")
	fs.IntVar(&c.Conns, "reads-conns", 32, "connections of the closed loop")
	fs.IntVar(&c.RLSIters, "reads-rls-iterations", 1000, "runs of each query with RLS and without")
	fs.StringVar(&c.ProfileDir, "reads-profile", "", "directory for CPU profiles of the server during each closed loop (empty: none)")
}

func (c readsConfig) validate() error {
	if c.Tenants < 1 || c.PerTenant < 2 || c.Step < time.Second || c.RateStart <= 0 || c.RateFactor <= 1 ||
		c.MaxSteps < 1 || c.Workers < 1 || c.Conns < 1 || c.RLSIters < 1 {
		return errors.New("figure 12: -reads-tenants, -reads-max-steps, -reads-workers, -reads-conns and -reads-rls-iterations must be positive, " +
			"-reads-vms-per-tenant at least 2, -reads-step at least 1s, -reads-rate-factor above 1")
	}
	return nil
}

type readsRoute struct {
	Name   string
	Steps  []readsStep
	Closed readsStep
}

// best is the highest open-loop step within the bar with no errors.
func (r readsRoute) best() (readsStep, bool) {
	var out readsStep
	found := false
	for _, s := range r.Steps {
		if s.P99 <= barReadP99 && s.Errors == 0 && s.Rate >= 0.95*s.Target && s.Rate > out.Rate {
			out, found = s, true
		}
	}
	return out, found
}

type readsResult struct {
	Tenants, VMs       int
	SeedTenantTime     time.Duration
	SeedVMTime         time.Duration
	IdleRSSKB, PeakKB  uint64
	Routes             []readsRoute
	RLS                []rlsCase
	LoadStart, LoadEnd string
}

// readsPhase is figure 12, on a database of its own.
func (b *bench) readsPhase(ctx context.Context) error {
	cfg := b.cfg.Reads
	db, err := openBenchDB(ctx, b.cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer func() { _ = db.drop() }()
	sub := &bench{cfg: b.cfg, db: db, rep: b.rep}
	res := readsResult{Tenants: cfg.Tenants, VMs: cfg.Tenants * cfg.PerTenant, LoadStart: loadAverage()}

	key, err := auth.GenerateKey()
	if err != nil {
		return err
	}
	keys, err := auth.NewKeySet(key)
	if err != nil {
		return err
	}
	keyPEM, err := auth.MarshalPrivateKeyPEM(key)
	if err != nil {
		return err
	}
	start := time.Now()
	tenants, err := sub.seedReadTenants(ctx, keys, cfg.Tenants)
	if err != nil {
		return err
	}
	res.SeedTenantTime = time.Since(start)
	start = time.Now()
	if err := sub.seedReadVMs(ctx, tenants, cfg.PerTenant); err != nil {
		return err
	}
	res.SeedVMTime = time.Since(start)

	srv, err := startReadsServer(ctx, db.appURL, keyPEM, randomBytes(32))
	if err != nil {
		return err
	}
	defer srv.stop()
	res.IdleRSSKB = srv.procStatus("VmRSS")
	pages, err := secondPages(srv.url, tenants, cfg.PerTenant)
	if err != nil {
		return err
	}
	cpu := &cpuMeter{srv: srv, pgPIDs: func() []int { return serverBackendsOf(ctx, db, readsApplicationName) }}
	routes := []struct {
		name string
		mk   newRequest
	}{
		{"GET /v1/vms?limit=50 (first and second pages)", func(rng *rand.Rand) *http.Request {
			i := rng.IntN(len(tenants))
			u := srv.url + "/v1/vms?limit=50"
			if rng.IntN(2) == 0 {
				u += "&cursor=" + url.QueryEscape(pages[i])
			}
			return authedGet(u, tenants[i].token)
		}},
		{"GET /v1/vms/{id}", func(rng *rand.Rand) *http.Request {
			t := tenants[rng.IntN(len(tenants))]
			return authedGet(srv.url+"/v1/vms/"+t.vms[rng.IntN(len(t.vms))].String(), t.token)
		}},
	}
	for _, r := range routes {
		route := readsRoute{Name: r.name}
		stop := startProgress("figure 12: "+r.name, 0, func() string { return "" })
		openLoop(ctx, srv, cpu, cfg.RateStart, time.Second, cfg.Workers, r.mk) // warm-up, not counted
		route.Steps = sweep(cfg, func(rate float64) readsStep { return openLoop(ctx, srv, cpu, rate, cfg.Step, cfg.Workers, r.mk) })
		profiled := make(chan error, 1)
		if cfg.ProfileDir != "" {
			name := filepath.Join(cfg.ProfileDir, "reads-"+map[bool]string{true: "list", false: "get"}[strings.Contains(r.name, "limit")]+".pprof")
			go func() { profiled <- srv.profile(ctx, cfg.Step, name) }()
		} else {
			profiled <- nil
		}
		route.Closed = closedLoop(ctx, srv, cpu, cfg.Conns, cfg.Step, r.mk)
		stop()
		if err := <-profiled; err != nil {
			return err
		}
		res.Routes = append(res.Routes, route)
	}
	res.PeakKB = srv.procStatus("VmHWM")

	stop := startProgress("figure 12: row-level security's cost", 0, func() string { return "" })
	res.RLS, err = measureRLS(ctx, db.adminURL, tenants, cfg.RLSIters)
	stop()
	if err != nil {
		return err
	}
	res.LoadEnd = loadAverage()
	res.print(os.Stdout)
	return nil
}

// sweep runs open-loop steps from the start rate up by the factor while
// they hold the bar, and stops at the first that does not; if the first
// does not hold it (a busy machine), it goes down by the factor squared
// until one does.
func sweep(cfg readsConfig, step func(rate float64) readsStep) []readsStep {
	within := func(s readsStep) bool { return s.P99 <= barReadP99 && s.Errors == 0 && s.Rate >= 0.95*s.Target }
	rate := cfg.RateStart
	out := []readsStep{step(rate)}
	if !within(out[0]) {
		for len(out) < cfg.MaxSteps && rate >= 20 {
			rate /= cfg.RateFactor * cfg.RateFactor
			if out = append(out, step(rate)); within(out[len(out)-1]) {
				break
			}
		}
		return out
	}
	for len(out) < cfg.MaxSteps {
		rate *= cfg.RateFactor
		if out = append(out, step(rate)); !within(out[len(out)-1]) {
			break
		}
	}
	return out
}

func authedGet(u, token string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		panic(err) // the bench builds these URLs itself
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

// secondPages reads each tenant's first page once, checks it, and returns
// the cursor of its second page.
func secondPages(base string, tenants []readsTenant, perTenant int) ([]string, error) {
	client := readsClient(4)
	defer client.CloseIdleConnections()
	out := make([]string, len(tenants))
	for i, t := range tenants {
		resp, err := client.Do(authedGet(base+"/v1/vms?limit=50", t.token))
		if err != nil {
			return nil, err
		}
		var page struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("first page of tenant %d: %d %s", i, resp.StatusCode, body)
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, err
		}
		if len(page.Items) != min(50, perTenant) || (perTenant > 50) != (page.NextCursor != "") {
			return nil, fmt.Errorf("first page of tenant %d: %d VMs, cursor %q", i, len(page.Items), page.NextCursor)
		}
		for _, it := range page.Items {
			if id, err := uuid.Parse(it.ID); err != nil || !containsID(t.vms, id) {
				return nil, fmt.Errorf("tenant %d was answered a VM not its own: %s", i, it.ID)
			}
		}
		out[i] = page.NextCursor
	}
	return out, nil
}

func containsID(ids []uuid.UUID, id uuid.UUID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func (r readsResult) print(out io.Writer) {
	fmt.Fprintf(out, "12. Reads: %d VMs over %d tenants (seeded in %s + %s), server in its own process, load average %s → %s\n",
		r.VMs, r.Tenants, r.SeedTenantTime.Round(time.Millisecond), r.SeedVMTime.Round(time.Millisecond), r.LoadStart, r.LoadEnd)
	fmt.Fprintf(out, "   server RSS: %.1f MiB idle, %.1f MiB peak\n", float64(r.IdleRSSKB)/1024, float64(r.PeakKB)/1024)
	for _, route := range r.Routes {
		fmt.Fprintf(out, "   %s\n", route.Name)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "load\tanswered/s\trequests\terrors\tp50\tp99\tmax\tsent late p99\tserver CPU/req\tPG CPU/req\tclient CPU/req\tRSS MiB\tload avg\t")
		for _, s := range append(route.Steps, route.Closed) {
			fmt.Fprintf(tw, "%s\t%.0f\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t\n", s.Label, s.Rate, s.Requests, s.Errors, ms(s.P50), ms(s.P99), ms(s.Max), late(s),
				us(s.ServerCPU), us(s.PGCPU), us(s.ClientCPU), float64(s.RSSKB)/1024, s.Load)
		}
		_ = tw.Flush()
		for _, s := range append(route.Steps, route.Closed) {
			if s.FirstErr != "" {
				fmt.Fprintf(out, "   first error at %s: %.200s\n", s.Label, s.FirstErr)
			}
		}
		if b, ok := route.best(); ok {
			fmt.Fprintf(out, "   highest rate with p99 ≤ %s: %.0f/s (p50 %s, p99 %s); closed loop %.0f/s at p99 %s\n",
				ms(barReadP99), b.Rate, ms(b.P50), ms(b.P99), route.Closed.Rate, ms(route.Closed.P99))
		} else {
			fmt.Fprintf(out, "   MISSED: no rate with p99 ≤ %s\n", ms(barReadP99))
		}
	}
	fmt.Fprintln(out, "   row-level security: the same query as accountdb_app (RLS, tenant set) and as a BYPASSRLS non-superuser role (no policies, same tenant predicate)")
	for _, c := range r.RLS {
		rt, exec := c.Overhead()
		verdict := "MET"
		if rt > 0.10 {
			verdict = "MISSED"
		}
		fmt.Fprintf(out, "   %s, %d runs each: round trip p50 %s with RLS, %s without: %+.1f %% — %s (bar ≤ 10 %%); means %s and %s\n",
			c.Query, c.Iterations, us(c.RLSP50), us(c.BypassP50), 100*rt, verdict, us(c.RLSMean), us(c.BypassMean))
		fmt.Fprintf(out, "     server execution p50 %s with RLS, %s without: %+.1f %%; means %s and %s\n",
			us(c.RLSExecP50), us(c.BypassExecP50), 100*exec, us(c.RLSExecMean), us(c.BypassExecMean))
		for _, p := range []struct{ label, plan string }{{"with RLS", c.RLSPlan}, {"without", c.BypassPlan}} {
			fmt.Fprintf(out, "     plan %s:\n", p.label)
			for _, l := range strings.Split(p.plan, "\n") {
				fmt.Fprintf(out, "       %s\n", l)
			}
		}
	}
	fmt.Fprintln(out)
}

// late is an open-loop step's LateP99, "-" for the closed loop.
func late(s readsStep) string {
	if s.Target == 0 {
		return "-"
	}
	return ms(s.LateP99)
}

func us(d time.Duration) string {
	if d < 100*time.Microsecond {
		return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}
