package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/accountdb/accountdb/agent/pvesim"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/migrations"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/nats-io/nats-server/v2/server"
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

	sim, err := pvesim.StartServer(pvesim.Options{Nodes: 3, TimeScale: 250 * time.Millisecond}, "127.0.0.1:0", true)
	if err != nil {
		return fmt.Errorf("pvesim: %w", err)
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
	fmt.Fprintf(stdout, `
AccountDB is running (dev mode).
  Log in:     POST %s/v1/auth/login  {"email": "...", "password": "..."}  with a demo account above
  API:        %s   (GET /healthz, /readyz, /metrics)
  NATS:       %s   (embedded JetStream, stream ACCOUNTDB_EVENTS)
  PostgreSQL: %s
  Proxmox:    %s   (in-process pvesim, 3 nodes)
Press Ctrl+C to stop.
`, sys.URL(), sys.URL(), natsURL, tenantdb.Redact(cfg.DatabaseURL), sim.URL())
	return sys.Run(ctx)
}

// migrateOrExplain applies migrations, turning an unreachable database into a
// message that says what to do.
func migrateOrExplain(ctx context.Context, cfg *config, stdout io.Writer) error {
	mctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	n, err := migrations.Up(mctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("cannot migrate PostgreSQL at %s: %w\n"+
			"Is PostgreSQL running? Start it, or point DATABASE_URL at one (a superuser or a role with CREATEROLE).",
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
