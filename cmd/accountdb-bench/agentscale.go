package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/accountdb/accountdb/agent"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Figure 5b: issue 16's agent at 10,000 guests. The same creates as figure
// 5's concurrent run (50 in flight) against a cluster of -agent-scale-nodes
// nodes that runs no guest, then one that already runs -agent-scale-guests
// (pvesim's Options.Guests: untagged, spread over the nodes), each on a
// fresh stack, alternating for -agent-scale-rounds rounds, each measured
// after a warm-up run as figure 5's (-vm-no-warmup: none). Bars: with the
// guests, the create rate and p50 within 10 % of the figures without; p99
// ≤ 500 ms (the simulator at time scale 0).

const (
	barAgentScaleRatio = 0.10
	barAgentScaleP99   = 500 * time.Millisecond
)

type agentScaleConfig struct {
	Skip    bool
	Guests  int
	Nodes   int
	Creates int
	Rounds  int
	// CPUProfile, if set, is where the CPU profile of the runs with guests
	// goes (the last one's, when there are several rounds).
	CPUProfile string
}

func agentScaleFlags(fs *flag.FlagSet, c *agentScaleConfig) {
	fs.BoolVar(&c.Skip, "skip-agent-scale", false, "skip the agent-at-scale benchmark (figure 5b)")
	fs.IntVar(&c.Guests, "agent-scale-guests", 10_000, "guests the cluster already runs in the run with guests")
	fs.IntVar(&c.Nodes, "agent-scale-nodes", 20, "nodes of the simulated cluster")
	fs.IntVar(&c.Creates, "agent-scale-creates", 200, "VMs created per run, with -vm-in-flight outstanding")
	fs.IntVar(&c.Rounds, "agent-scale-rounds", 2, "runs without and with the guests, alternating")
	fs.StringVar(&c.CPUProfile, "agent-scale-cpuprofile", "", "write the CPU profile of the creates with guests to this file")
}

func (c agentScaleConfig) validate() error {
	if c.Guests < 1 || c.Nodes < 1 || c.Creates < 1 || c.Rounds < 1 {
		return errors.New("-agent-scale-guests, -nodes, -creates and -rounds must be positive")
	}
	return nil
}

// agentScaleRun is one run: the creates, and what the agent's
// reconciliation passes cost meanwhile (its metrics).
type agentScaleRun struct {
	Guests int // present before the creates
	Level  createLevel
	// Warmup is the same run before, on the stack as started (zero with
	// -vm-no-warmup).
	Warmup     createLevel
	Passes     int           // reconciliation passes, the first inventory included
	PassMean   time.Duration // their mean duration
	GuestsSeen int           // guests the last pass listed
	Load       string        // load average after the run
	// CPUPerVM is the process's CPU time (user and system: core, agent
	// and pvesim together) during the creates, per VM: what the machine's
	// load does not change, unlike the latencies.
	CPUPerVM time.Duration
	// PGCPUPerVM is the CPU time of the database's backends per VM.
	PGCPUPerVM time.Duration
}

type agentScaleResult struct {
	Nodes, InFlight int
	Runs            []agentScaleRun
	// Without and With pool every run's latencies without and with the
	// guests.
	Without, With createLevel
}

func (b *bench) agentScalePhase(ctx context.Context) error {
	c := b.cfg.AgentScale
	res := agentScaleResult{Nodes: c.Nodes, InFlight: b.cfg.VMInFlight}
	var without, with []createLevel
	for round := range c.Rounds {
		for _, guests := range []int{0, c.Guests} {
			run, err := b.agentScaleRun(ctx, guests, round)
			if err != nil {
				return fmt.Errorf("agent at scale, %d guests: %w", guests, err)
			}
			res.Runs = append(res.Runs, run)
			if guests == 0 {
				without = append(without, run.Level)
			} else {
				with = append(with, run.Level)
			}
		}
	}
	res.Without, res.With = poolLevels(without), poolLevels(with)
	b.rep.AgentScale = &res
	return nil
}

func (b *bench) agentScaleRun(ctx context.Context, guests, round int) (_ agentScaleRun, err error) {
	c := b.cfg.AgentScale
	run := agentScaleRun{Guests: guests}
	b.db.store.Pool().Reset()
	reg := prometheus.NewRegistry()
	stopBoot := startProgress(fmt.Sprintf("round %d: starting core, agent and pvesim (%d nodes, %d guests)", round+1, c.Nodes, guests), 0,
		func() string { return "" })
	st, err := b.bootVMStackWith(ctx, vmStackConfig{Nodes: c.Nodes, Guests: guests, Metrics: reg})
	stopBoot()
	if err != nil {
		return run, err
	}
	defer func() {
		if serr := st.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	cl, err := st.tenant(ctx, "bench-agent-scale")
	if err != nil {
		return run, err
	}
	for i := range 3 { // warm-up, not measured
		id, err := cl.createVM(ctx, fmt.Sprintf("warmup-%d", i))
		if err != nil {
			return run, err
		}
		if err := cl.waitRunning(ctx, id, b.cfg.VMPoll); err != nil {
			return run, err
		}
	}
	// As figure 5: the measured run follows the same run in a tenant of its
	// own, so that it measures the agent at its guest count rather than the
	// stack's first burst after start.
	if run.Warmup, err = b.warmUp(ctx, st, "bench-agent-scale-warmup", c.Creates); err != nil {
		return run, err
	}
	if guests > 0 {
		stop, err := startCPUProfile(c.CPUProfile)
		if err != nil {
			return run, err
		}
		defer stop()
	}
	before, err := st.agentCreates()
	if err != nil {
		return run, err
	}
	cpu0, pg0 := processCPU(), st.postgresCPU(ctx)
	if run.Level, _, err = cl.createConcurrent(ctx, c.Creates, b.cfg.VMInFlight, b.cfg.VMPoll); err != nil {
		return run, err
	}
	run.CPUPerVM = (processCPU() - cpu0) / time.Duration(c.Creates)
	run.PGCPUPerVM = pg0.since(st.postgresCPU(ctx)) / time.Duration(c.Creates)
	concurrency := b.cfg.VMAgentConcurrency
	if concurrency <= 0 {
		concurrency = agent.DefaultConcurrency
	}
	stages, err := st.createStages(ctx, run.Level, concurrency, before)
	if err != nil {
		return run, err
	}
	run.Level.stages = &stages
	run.Load = loadAverage()
	run.Passes, run.PassMean, run.GuestsSeen, err = reconcileCost(reg)
	return run, err
}

// startCPUProfile profiles this process into path until stop is called;
// nothing when path is empty. A path ending in ".trace" gets an execution
// trace instead (go tool trace): where a request waited, not only where
// the CPU went.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	start, end := pprof.StartCPUProfile, pprof.StopCPUProfile
	if strings.HasSuffix(path, ".trace") {
		start, end = trace.Start, trace.Stop
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, err
	}
	return sync.OnceFunc(func() { end(); f.Close() }), nil
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reconcileCost reads the agent's reconciliation metrics: passes, their
// mean duration, the guests the last one listed.
func reconcileCost(reg *prometheus.Registry) (int, time.Duration, int, error) {
	families, err := reg.Gather()
	if err != nil {
		return 0, 0, 0, err
	}
	var (
		passes int
		sum    float64
		seen   int
	)
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "accountdb_agent_reconcile_seconds":
				passes += int(m.GetHistogram().GetSampleCount())
				sum += m.GetHistogram().GetSampleSum()
			case "accountdb_agent_reconcile_guests":
				seen = max(seen, int(gaugeValue(m)))
			}
		}
	}
	mean := time.Duration(0)
	if passes > 0 {
		mean = time.Duration(sum / float64(passes) * float64(time.Second))
	}
	return passes, mean, seen, nil
}

func gaugeValue(m *dto.Metric) float64 { return m.GetGauge().GetValue() }

// poolLevels is one level from several runs: VMs and time added, the
// percentiles of every latency together.
func poolLevels(ls []createLevel) createLevel {
	var out createLevel
	var lat, post []time.Duration
	for _, l := range ls {
		out.InFlight, out.Method = l.InFlight, l.Method
		out.VMs += l.VMs
		out.Elapsed += l.Elapsed
		lat, post = append(lat, l.lat...), append(post, l.post...)
	}
	out.P50, out.P99, out.Max = percentiles(lat)
	_, out.PostP99, _ = percentiles(post)
	return out
}

// registererOf is reg as a Registerer, nil when reg is.
func registererOf(reg *prometheus.Registry) prometheus.Registerer {
	if reg == nil {
		return nil
	}
	return reg
}

func (r *agentScaleResult) print(out io.Writer) {
	fmt.Fprintf(out, "5b. The agent at scale: create → running, %d in flight, on %d nodes without and with guests already present (fresh stack per run)\n",
		r.InFlight, r.Nodes)
	for _, run := range r.Runs {
		l := run.Level
		fmt.Fprintf(out, "   %5d guests: %d VMs in %s (%.1f/s); p50 %s  p99 %s  max %s; POST p99 %s; CPU %s per VM (PostgreSQL %s); reconciliation: %d passes, mean %s, %d guests listed; load %s\n",
			run.Guests, l.VMs, l.Elapsed.Round(time.Millisecond), l.Rate(), ms(l.P50), ms(l.P99), ms(l.Max), ms(l.PostP99),
			ms(run.CPUPerVM), ms(run.PGCPUPerVM), run.Passes, ms(run.PassMean), run.GuestsSeen, run.Load)
		if w := run.Warmup; w.VMs > 0 {
			fmt.Fprintf(out, "          after the same run first in another tenant (warm-up, not counted): %.1f/s; p50 %s  p99 %s; POST p99 %s\n",
				w.Rate(), ms(w.P50), ms(w.P99), ms(w.PostP99))
		}
		if l.stages != nil {
			l.stages.print(out, "          ")
		}
	}
	for _, v := range []struct {
		what string
		l    createLevel
	}{{"without guests", r.Without}, {"with guests", r.With}} {
		fmt.Fprintf(out, "   all runs %s: %d VMs, %.1f/s; p50 %s  p99 %s  max %s; POST p99 %s\n",
			v.what, v.l.VMs, v.l.Rate(), ms(v.l.P50), ms(v.l.P99), ms(v.l.Max), ms(v.l.PostP99))
	}
	fmt.Fprintln(out)
}

func (r *agentScaleResult) printBars(out *os.File) {
	w, g := r.Without, r.With
	verdict(out, fmt.Sprintf("create rate with guests ≥ %.0f%% of without", 100*(1-barAgentScaleRatio)),
		g.Rate() >= (1-barAgentScaleRatio)*w.Rate(), fmt.Sprintf("%.1f/s vs %.1f/s (%.0f%%)", g.Rate(), w.Rate(), 100*g.Rate()/w.Rate()))
	verdict(out, fmt.Sprintf("create p50 with guests ≤ %.0f%% of without", 100*(1+barAgentScaleRatio)),
		float64(g.P50) <= (1+barAgentScaleRatio)*float64(w.P50), fmt.Sprintf("%s vs %s (%.0f%%)", ms(g.P50), ms(w.P50), 100*float64(g.P50)/float64(w.P50)))
	verdict(out, fmt.Sprintf("create p99 with guests ≤ %s", barAgentScaleP99), g.P99 <= barAgentScaleP99, ms(g.P99))
}
