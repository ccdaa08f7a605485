package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/accountdb/accountdb/agent"
	"github.com/accountdb/accountdb/agent/pvesim"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/migrations"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/accountdb/accountdb/vault"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// runDev is `make run`: everything in one process with zero configuration.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	cfg := bindConfig(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	log := cfg.logger(stderr)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	if err := migrateOrExplain(ctx, cfg, stdout); err != nil {
		return err
	}

	natsURL := cfg.NATSURL
	if natsURL == "" {
		ns, err := startEmbeddedNATS(filepath.Join(cfg.DataDir, "nats"))
		if err != nil {
			return err
		}
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		natsURL = ns.ClientURL()
	}

	// A fixed address, so the cluster registered on the first start is
	// still the right one on the next. Its state lives in memory: VMs of an
	// earlier run are gone, and reconciliation records them as deleted.
	simAddr := env("ACCOUNTDB_PVESIM_ADDR", "127.0.0.1:18006")
	sim, err := pvesim.StartServer(pvesim.Options{Nodes: 3, TimeScale: 250 * time.Millisecond}, simAddr, true)
	if err != nil {
		return fmt.Errorf("pvesim on %s (set ACCOUNTDB_PVESIM_ADDR to use another address): %w", simAddr, err)
	}
	defer sim.Close()

	acfg, err := appConfig(cfg, natsURL)
	if err != nil {
		return err
	}
	sys, err := app.Start(ctx, acfg, log)
	if err != nil {
		return err
	}
	if err := seedDemo(ctx, sys.Commands, cfg.DataDir, stdout); err != nil {
		return err
	}
	if _, err := sys.Commands.RegisterCluster(ctx, systemActor(), commands.Options{IdempotencyKey: "dev-pvesim-cluster"},
		commands.NewCluster{Name: "pvesim", APIURL: sim.URL(), TokenID: pvesim.DefaultTokenID,
			TokenSecret: pvesim.DefaultTokenSecret, InsecureTLS: true}); err != nil {
		return fmt.Errorf("register the pvesim cluster: %w", err)
	}
	ag, err := startDevAgent(natsURL, acfg.Vault, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `
AccountDB is running (dev mode).
  Console:    %s/   (sign in with a demo account above)
  Log in:     POST %s/v1/auth/login  {"email": "...", "password": "..."}  with a demo account above
  API:        %s   (GET /healthz, /readyz, /metrics)
  NATS:       %s   (embedded JetStream, stream ACCOUNTDB_EVENTS)
  PostgreSQL: %s
  Proxmox:    %s   (in-process pvesim, 3 nodes)
Press Ctrl+C to stop.
`, sys.URL(), sys.URL(), sys.URL(), natsURL, tenantdb.Redact(cfg.DatabaseURL), sim.URL())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sys.Run(gctx) })
	g.Go(func() error {
		if err := ag.Run(gctx); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("agent: %w", err)
		}
		return nil
	})
	return g.Wait()
}

// startDevAgent runs the Proxmox agent in-process on its own NATS
// connection, as `accountdb agent` would run beside the service.
func startDevAgent(natsURL string, v *vault.Vault, log *slog.Logger) (*agent.Agent, error) {
	nc, err := nats.Connect(natsURL, nats.Name("accountdb-agent"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return nil, fmt.Errorf("agent nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	// A short lease: after a crash of `accountdb dev` its old lease, kept
	// in the embedded NATS store, holds the restarted agent back this long.
	return agent.New(agent.Config{JS: js, Vault: v, Logger: log.With("component", "agent"),
		ReconcileInterval: 10 * time.Second, TaskPollInterval: 200 * time.Millisecond, LeaseTTL: 5 * time.Second})
}

// migrateOrExplain applies migrations, turning an unreachable database into a
// message that says what to do.
func migrateOrExplain(ctx context.Context, cfg *config, stdout io.Writer) error {
	mctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	n, err := migrations.Up(mctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("cannot migrate PostgreSQL at %s: %w\n"+
			"is PostgreSQL running? Start it, or point DATABASE_URL at one (a superuser or a role with CREATEROLE)",
			tenantdb.Redact(cfg.DatabaseURL), err)
	}
	if n > 0 {
		fmt.Fprintf(stdout, "applied %d migration(s)\n", n)
	}
	return nil
}

// startEmbeddedNATS runs nats-server in-process with JetStream on a free
// loopback port: never 4222, which another server may hold.
func startEmbeddedNATS(storeDir string) (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{
		ServerName: "accountdb-dev",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats: not ready after 15s")
	}
	return ns, nil
}
