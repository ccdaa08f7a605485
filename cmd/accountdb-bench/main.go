// Command accountdb-bench is AccountDB's load generator: `make bench` runs it.
// It measures the event store against a fresh database on DATABASE_URL and
// prints a report; docs/BENCHMARKS.md records and explains the figures.
//
//  1. Append throughput and latency for single-event commands at 1, 8 and 32
//     concurrent writers, each writer on its own stream.
//  2. The same appends as a pgbench custom script (the exact statements, in one
//     pipeline with one Sync), as the ceiling the Go path is compared with.
//  3. ReadAll throughput, reading the whole log in commit order.
//  4. Relay throughput and publish lag, through an embedded NATS server.
//  5. The whole system over HTTP (core, agent, pvesim): create-to-running
//     latency, and projection lag under paced VM commands (vms.go).
//  6. Live subscribers: delivery lag to many SSE subscribers (sse.go).
//  9. Replicas: read-your-writes with one and two core instances, a
//     projector's catch-up after its replica fails against a rebuild, and
//     the shared limits' cost per counted request (replicas.go).
//  10. Consoles: keystroke round trip through many open consoles (console.go).
//  11. Webhooks: delivery lag to healthy endpoints while others time out
//     (webhooks.go).
//  12. Reads: GET /v1/vms and GET /v1/vms/{id} at 100,000 VMs over 1,000
//     tenants, and row-level security's cost (reads.go).
//  13. Projection rebuild: a million events replayed into tenant_activity,
//     progress bar included (rebuild.go).
//
// These are measurements, not tests: nothing here decides whether the build
// passes, and the bars are reported, not enforced.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/accountdb/accountdb/internal/app"
)

// config is the benchmark's knobs, all with flags; defaults keep `make bench`
// under three minutes on a two-core machine.
type config struct {
	// SSE is figure 6 (sse.go).
	SSE sseConfig

	DatabaseURL   string
	Writers       []int
	Duration      time.Duration
	Rounds        int
	Warmup        time.Duration
	PgbenchPath   string
	ReadEvents    int
	ReadBatch     int
	RelayDuration time.Duration
	RelayWriters  int
	RelayRate     float64
	RelayBacklog  int
	SkipPgbench   bool
	// AppendGroups is the store's group commit flushers (eventstore
	// WithGroupCommit); negative keeps the store's default, 0 turns it off.
	AppendGroups int
	SkipRelay    bool
	// Figure 7 (audit.go).
	Audit auditConfig
	// Figure 11 (webhooks.go).
	Webhooks webhookConfig

	// Figure 5 (vms.go).
	SkipVMs            bool
	VMSequential       int
	VMConcurrent       int
	VMInFlight         int
	VMNoWarmup         bool
	VMPoll             time.Duration
	VMWatch            string // how the concurrent creates' client learns a VM runs: watchLive or watchSweep
	VMCommandRate      float64
	VMCommandDuration  time.Duration
	VMAgentConcurrency int
	VMCPUProfile       string // figure 5's concurrent creates, profiled
	AppendCPUProfile   string // figure 2's first round of ours at each level, profiled
	IPAM               ipamConfig
	AgentScale         agentScaleConfig // figure 5b (agentscale.go)
	// Figure 9 (replicas.go).
	Replicas replicasConfig
	// Figure 10 (console.go).
	Console consoleConfig
	// Figure 12 (reads.go).
	Reads readsConfig
	// Figure 13 (rebuild.go).
	Rebuild rebuildConfig
	// SkipAppends leaves out figures 1–2.
	SkipAppends bool
}

// defaultAdminURL matches the Makefile and internal/pgtest.
const defaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres"

func parseFlags(args []string) (config, error) {
	c := config{DatabaseURL: os.Getenv("DATABASE_URL")}
	if c.DatabaseURL == "" {
		c.DatabaseURL = defaultAdminURL
	}
	fs := flag.NewFlagSet("accountdb-bench", flag.ContinueOnError)
	sseFlags(fs, &c.SSE)
	writers := fs.String("writers", "1,8,32", "concurrency levels for the append benchmark, comma-separated")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "administrator URL of the PostgreSQL cluster (env DATABASE_URL); a fresh database is created and dropped")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long each append level runs, for ours and for pgbench")
	fs.IntVar(&c.Rounds, "rounds", 2, "each level alternates ours and pgbench's this many times, each for duration/rounds")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "unmeasured appends before the first level")
	fs.StringVar(&c.PgbenchPath, "pgbench", "/usr/bin/pgbench", "pgbench binary")
	fs.IntVar(&c.ReadEvents, "read-events", 200_000, "events appended before the ReadAll benchmark")
	fs.IntVar(&c.ReadBatch, "read-batch", 5000, "events per ReadAll call")
	fs.DurationVar(&c.RelayDuration, "relay-duration", 10*time.Second, "how long the relay runs under sustained appends")
	fs.IntVar(&c.RelayWriters, "relay-writers", 8, "writers during the relay benchmark; they are paced to the append rate measured at this level")
	fs.Float64Var(&c.RelayRate, "relay-rate", 0, "appends/s during the relay benchmark; 0 means the rate measured with -relay-writers writers")
	fs.IntVar(&c.RelayBacklog, "relay-backlog", 20_000, "events in the log before the relay starts; publishing them measures its catch-up rate")
	fs.IntVar(&c.AppendGroups, "append-group-commit", -1, "group commit transactions in flight for Store.Append (0 = off, one transaction per append; negative = the store's default)")
	fs.StringVar(&c.AppendCPUProfile, "append-cpuprofile", "", "write the CPU profile of the first round of our appends at each level to this file, suffixed .w<writers>")
	fs.BoolVar(&c.SkipPgbench, "skip-pgbench", false, "skip the pgbench comparison")
	fs.BoolVar(&c.SkipRelay, "skip-relay", false, "skip the relay benchmark")
	auditFlags(fs, &c.Audit)
	webhookFlags(fs, &c.Webhooks)
	ipamFlags(fs, &c.IPAM)
	agentScaleFlags(fs, &c.AgentScale)
	replicasFlags(fs, &c.Replicas)
	consoleFlags(fs, &c.Console)
	readsFlags(fs, &c.Reads)
	rebuildFlags(fs, &c.Rebuild)
	fs.BoolVar(&c.SkipAppends, "skip-appends", false, "skip the append benchmark (figures 1–2)")
	fs.BoolVar(&c.SkipVMs, "skip-vms", false, "skip the whole-system VM benchmark (figure 5)")
	fs.IntVar(&c.VMSequential, "vm-sequential", 50, "VMs created one at a time, each awaited until running")
	fs.IntVar(&c.VMConcurrent, "vm-concurrent", 200, "VMs created with -vm-in-flight creates outstanding")
	fs.IntVar(&c.VMInFlight, "vm-in-flight", 50, "creates outstanding at once in the concurrent create run")
	fs.BoolVar(&c.VMNoWarmup, "vm-no-warmup", false, "measure the concurrent creates on the system as started, without the same run in another tenant before them")
	fs.DurationVar(&c.VMPoll, "vm-poll", 5*time.Millisecond, "pause between the client's polls for a running VM")
	fs.StringVar(&c.VMWatch, "vm-watch", watchSweep, "how the concurrent creates' client learns that a VM runs: "+watchSweep+
		" (every running VM of the tenant listed every -vm-poll) or "+watchLive+" (GET /v1/events, then the VM at the event's position, as the console does)")
	fs.Float64Var(&c.VMCommandRate, "vm-command-rate", 200, "VM commands/s (reboots) during the projection-lag run; 0 skips it")
	fs.DurationVar(&c.VMCommandDuration, "vm-command-duration", 10*time.Second, "how long the projection-lag run issues commands")
	fs.IntVar(&c.VMAgentConcurrency, "vm-agent-concurrency", 0, "the agent's Proxmox operations at once; 0 means its default")
	fs.StringVar(&c.VMCPUProfile, "vm-cpuprofile", "", "write the CPU profile of figure 5's concurrent creates to this file")
	fs.DurationVar(&runningLimit, "vm-running-limit", time.Minute, "how long one VM may take to run before a VM phase fails")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := c.Audit.validate(); err != nil {
		return c, err
	}
	if err := c.SSE.validate(); err != nil {
		return c, err
	}
	if err := c.Webhooks.validate(); err != nil {
		return c, err
	}
	if err := c.IPAM.validate(); err != nil {
		return c, err
	}
	if err := c.AgentScale.validate(); err != nil {
		return c, err
	}
	if err := c.Replicas.validate(); err != nil {
		return c, err
	}
	if err := c.Console.validate(); err != nil {
		return c, err
	}
	if err := c.Reads.validate(); err != nil {
		return c, err
	}
	if err := c.Rebuild.validate(); err != nil {
		return c, err
	}
	for _, w := range strings.Split(*writers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 1 || n > 256 {
			return c, fmt.Errorf("-writers: %q is not a number of writers between 1 and 256", w)
		}
		c.Writers = append(c.Writers, n)
	}
	switch {
	case c.Rounds < 1 || c.Duration/time.Duration(c.Rounds) < time.Second:
		return c, errors.New("-rounds must be at least 1, and -duration at least 1s per round")
	case c.ReadBatch < 1 || c.ReadBatch > 10_000:
		return c, errors.New("-read-batch must be between 1 and 10000 (the store's MaxReadLimit)")
	case c.ReadEvents < 0:
		return c, errors.New("-read-events must not be negative")
	case c.RelayBacklog < 0:
		return c, errors.New("-relay-backlog must not be negative")
	case c.RelayWriters < 1:
		return c, errors.New("-relay-writers must be at least 1")
	case c.VMSequential < 1 || c.VMConcurrent < 1 || c.VMInFlight < 1 || c.VMPoll <= 0 || c.VMCommandRate < 0:
		return c, errors.New("-vm-sequential, -vm-concurrent, -vm-in-flight and -vm-poll must be positive, -vm-command-rate not negative")
	case c.VMWatch != watchLive && c.VMWatch != watchSweep:
		return c, fmt.Errorf("-vm-watch must be %s or %s", watchLive, watchSweep)
	}
	return c, nil
}

func main() {
	// The system under test runs in this process (or figure 12's child) with
	// the collector's target the service's own main sets.
	app.TuneGC(os.Getenv)
	if os.Getenv(readsServerEnv) != "" {
		os.Exit(readsServerMain()) // figure 12's server (reads_server.go)
	}
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "accountdb-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "accountdb-bench:", err)
		stop()
		os.Exit(1)
	}
}

// run sets up the database, runs every phase and prints the report. The bench
// database is dropped whatever happens.
func run(ctx context.Context, cfg config) (err error) {
	// Fail before spending minutes on the other phases.
	if !cfg.SkipPgbench {
		if err := checkPgbench(cfg.PgbenchPath); err != nil {
			return err
		}
	}
	started := time.Now()
	db, err := openBenchDB(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer func() {
		if derr := db.drop(); derr != nil && err == nil {
			err = derr
		}
	}()
	rep := &report{Machine: describeMachine(ctx, db), Database: db.name}
	rep.printHeader()

	if cfg.AppendGroups >= 0 {
		db.store.WithGroupCommit(cfg.AppendGroups)
	}
	b := &bench{cfg: cfg, db: db, rep: rep}
	if !cfg.SkipAppends {
		if err := b.appendPhase(ctx); err != nil {
			return err
		}
	}
	if err := b.readAllPhase(ctx); err != nil {
		return err
	}
	if !cfg.SkipRelay {
		if err := b.relayPhase(ctx); err != nil {
			return err
		}
	}
	if !cfg.Audit.Skip {
		if err := b.auditPhase(ctx); err != nil {
			return err
		}
	}
	if !cfg.SkipVMs {
		if err := b.vmPhase(ctx); err != nil {
			return err
		}
	}
	if !cfg.AgentScale.Skip {
		if err := b.agentScalePhase(ctx); err != nil {
			return err
		}
	}
	if !cfg.IPAM.Skip {
		if err := b.ipamPhase(ctx); err != nil {
			return err
		}
	}
	if !cfg.Console.Skip {
		if err := b.consolePhase(ctx); err != nil {
			return err
		}
	}
	if !cfg.SSE.Skip {
		if err := b.ssePhase(ctx); err != nil {
			return err
		}
	}
	if !cfg.Replicas.Skip {
		if err := b.replicasPhase(ctx); err != nil {
			return err
		}
	}
	if !cfg.Webhooks.Skip {
		if err := b.webhookPhase(ctx); err != nil {
			return err
		}
	}
	if !cfg.Reads.Skip {
		if err := b.readsPhase(ctx); err != nil {
			return err
		}
	}
	if !cfg.Rebuild.Skip {
		if err := b.rebuildPhase(ctx); err != nil {
			return err
		}
	}
	rep.Elapsed = time.Since(started)
	rep.LoadEnd = loadAverage()
	rep.printSummary()
	return nil
}
