package pvesim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// RunCommand implements `accountdb pvesim`: it parses args, serves the
// simulator and returns when ctx is cancelled.
func RunCommand(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("pvesim", flag.ContinueOnError)
	fs.SetOutput(stdout)
	listen := fs.String("listen", "127.0.0.1:8006", "address to listen on")
	nodes := fs.Int("nodes", DefaultNodes, "number of cluster nodes (pve1..pveN)")
	token := fs.String("token", DefaultToken, "accepted API token, form user@realm!tokenid=secret")
	user := fs.String("user", DefaultUser, "user accepted by POST /access/ticket")
	password := fs.String("password", DefaultPassword, "password for --user at POST /access/ticket")
	useTLS := fs.Bool("tls", true, "serve HTTPS with a generated self-signed certificate (PVE's default)")
	timeScale := fs.Duration("time-scale", 250*time.Millisecond, "base task duration; 0 finishes tasks before the UPID is returned")
	guestBoot := fs.Float64("guest-boot", DefaultGuestBoot, "time a started VM takes until its guest agent answers, in multiples of --time-scale (negative: at once)")
	cores := fs.Int("node-cores", DefaultNodeCores, "CPU cores per node")
	memGiB := fs.Uint64("node-memory-gib", DefaultNodeMemory>>30, "RAM per node in GiB")
	diskGiB := fs.Uint64("node-storage-gib", DefaultNodeStorage>>30, "guest storage per node in GiB")
	guests := fs.Int("guests", 0, "guests the cluster already runs at start (untagged, spread over the nodes)")
	noTemplates := fs.Bool("no-templates", false, "do not seed the default templates")
	seed := fs.Int64("seed", 1, "seed for MAC addresses and the error-rate fault")
	verbose := fs.Bool("v", false, "log requests that fail")

	failTasks := fs.String("fail-tasks", "", "fail the next N tasks of a type, e.g. qmstart=2,qmcreate=1")
	latency := fs.Duration("latency", 0, "delay added to every request")
	failRequests := fs.Int("fail-requests", 0, "answer the next N requests with --error-status")
	errorRate := fs.Float64("error-rate", 0, "fraction (0..1) of requests answered with --error-status")
	errorStatus := fs.Int("error-status", 500, "HTTP status (5xx) for injected request failures")
	locks := fs.String("lock", "", "hold config locks, e.g. 9000=backup,9001")
	exhaust := fs.String("exhaust", "", "comma-separated nodes that are out of memory and storage")
	offline := fs.String("offline", "", "comma-separated nodes that are down (their guests list as unknown)")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("pvesim: unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if id, secret := splitToken(*token); !strings.Contains(id, "!") || secret == "" {
		return fmt.Errorf("pvesim: --token must look like user@realm!tokenid=secret")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	opts := Options{
		Nodes: *nodes, NodeCores: *cores, NodeMemory: *memGiB << 30, NodeStorage: *diskGiB << 30,
		Token: *token, User: *user, Password: *password, TimeScale: *timeScale, GuestBoot: *guestBoot, Seed: *seed, Guests: *guests,
		Logger: slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: level})),
	}
	if *noTemplates {
		opts.Templates = []Template{}
	}
	sim := New(opts)
	if err := applyFaultFlags(sim, *failTasks, *locks, *exhaust); err != nil {
		return err
	}
	for _, n := range splitList(*offline) {
		if err := sim.SetNodeOnline(n, false); err != nil {
			return err
		}
	}
	sim.SetLatency(*latency)
	if *failRequests > 0 {
		sim.FailNextRequests(*failRequests, *errorStatus)
	}
	if *errorRate > 0 {
		sim.SetErrorRate(*errorRate, *errorStatus)
	}

	srv, err := sim.Start(*listen, *useTLS)
	if err != nil {
		return err
	}
	tokenID, _ := splitToken(*token)
	_, _ = fmt.Fprintf(stdout, "pvesim: serving %d nodes at %s (token id %s, ticket user %s)\n", *nodes, srv.URL(), tokenID, *user)
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Stop(stopCtx)
}

func applyFaultFlags(sim *Simulator, failTasks, locks, exhaust string) error {
	for _, item := range splitList(failTasks) {
		typ, n, ok := strings.Cut(item, "=")
		count, err := strconv.Atoi(n)
		if !ok || err != nil || count < 0 {
			return fmt.Errorf("pvesim: --fail-tasks entry %q must be type=count", item)
		}
		sim.FailNextTasks(typ, count, "")
	}
	for _, item := range splitList(locks) {
		id, lock, _ := strings.Cut(item, "=")
		vmid, err := strconv.Atoi(id)
		if err != nil {
			return fmt.Errorf("pvesim: --lock entry %q must be vmid[=lock]", item)
		}
		if err := sim.HoldLock(vmid, lock); err != nil {
			return err
		}
	}
	for _, n := range splitList(exhaust) {
		if err := sim.ExhaustNode(n); err != nil {
			return err
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
