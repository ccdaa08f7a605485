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
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/accountdb/accountdb/migrations"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/accountdb/accountdb/vault"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// runDev is `make run`: everything in one process with zero configuration.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	cfg := bindConfig(fs)
	bindServer(fs, cfg, "") // one process on loopback: all on the API listener
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

	natsURL, natsAuth := cfg.NATSURL, "external; credentials from ACCOUNTDB_NATS_CREDS and ACCOUNTDB_NATS_AGENT_CREDS"
	var coreNATS, agentNATS []nats.Option
	if natsURL == "" {
		authDir := filepath.Join(cfg.DataDir, "nats-auth")
		keys, err := devNATSKeys(authDir)
		if err != nil {
			return err
		}
		ns, err := startEmbeddedNATS(filepath.Join(cfg.DataDir, "nats"), keys)
		if err != nil {
			return err
		}
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		natsURL = ns.ClientURL()
		natsAuth = "credentials in " + authDir + " (core.creds, agent.creds; a tenant's: accountdb nats creds --dir " + authDir + " --tenant <id> --consumer <label>)"
		if coreNATS, err = keys.ConnectOptions(natsauth.Core()); err != nil {
			return err
		}
		if agentNATS, err = keys.ConnectOptions(natsauth.Agent()); err != nil {
			return err
		}
	} else {
		var err error
		if coreNATS, agentNATS, err = externalDevNATS(cfg); err != nil {
			return err
		}
	}

	// A fixed address, so the cluster registered on the first start is
	// still the right one on the next. Its state lives in memory: VMs of an
	// earlier run are gone, and reconciliation records them as deleted.
	// Plain HTTP on loopback, which only dev accepts: a certificate made
	// afresh at each start could not stay pinned by the registration.
	simAddr := env("ACCOUNTDB_PVESIM_ADDR", "127.0.0.1:18006")
	sim, err := pvesim.StartServer(pvesim.Options{Nodes: 3, TimeScale: 250 * time.Millisecond}, simAddr, false)
	if err != nil {
		return fmt.Errorf("pvesim on %s (set ACCOUNTDB_PVESIM_ADDR to use another address): %w", simAddr, err)
	}
	defer sim.Close()

	acfg, err := appConfig(cfg, natsURL, coreNATS)
	if err != nil {
		return err
	}
	acfg.NATSReplicas = cfg.NATS.Replicas
	acfg.MaxProjectorLag = cfg.MaxProjectorLag
	if acfg.Webhooks, err = webhookOptions(); err != nil {
		return err
	}
	acfg.BackupSchedules = cfg.backupSchedules()
	acfg.DevLoopbackHTTP = true
	sys, err := app.Start(ctx, acfg, log)
	if err != nil {
		return err
	}
	if err := seedDemo(ctx, sys.Commands, cfg.DataDir, stdout); err != nil {
		return err
	}
	cluster, err := sys.Commands.RegisterCluster(ctx, systemActor(), commands.Options{IdempotencyKey: "dev-pvesim-http"},
		commands.NewCluster{Name: "pvesim", APIURL: sim.URL(), TokenID: pvesim.DefaultTokenID,
			TokenSecret: pvesim.DefaultTokenSecret})
	if err != nil {
		return fmt.Errorf("register the pvesim cluster: %w", err)
	}
	// Its default address pool: every VM created in dev gets an address.
	if _, err := sys.Commands.CreateIPPool(ctx, systemActor(), commands.Options{IdempotencyKey: "dev-pvesim-pool"}, domain.IPPoolInput{
		Name: "dev-lan", ClusterID: cluster.ID, Bridge: "vmbr0", CIDR: "10.10.0.0/24", Gateway: "10.10.0.1",
		RangeStart: "10.10.0.100", RangeEnd: "10.10.0.250", Nameservers: []string{"10.10.0.1"}, IPv6Prefix: "fd00:10::/64", Default: true,
	}); err != nil {
		return fmt.Errorf("create the pvesim cluster's address pool: %w", err)
	}
	ag, err := startDevAgent(natsURL, agentNATS, acfg.Vault, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `
AccountDB is running (dev mode).
  Console:    %s/   (sign in with a demo account above)
  Log in:     POST %s/v1/auth/login  {"email": "...", "password": "..."}  with a demo account above
  API:        %s
  Operations: %s   (GET /healthz, /readyz, /metrics)
  NATS:       %s   (JetStream, stream ACCOUNTDB_EVENTS)
              %s
  PostgreSQL: %s
  Proxmox:    %s   (in-process pvesim, 3 nodes)
Press Ctrl+C to stop.
`, sys.URL(), sys.URL(), sys.URL(), sys.OpsURL(), natsURL, natsAuth, tenantdb.Redact(cfg.DatabaseURL), sim.URL())
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
func startDevAgent(natsURL string, natsOpts []nats.Option, v *vault.Vault, log *slog.Logger) (*agent.Agent, error) {
	nc, err := nats.Connect(natsURL, append([]nats.Option{nats.Name("accountdb-agent"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true)}, natsOpts...)...)
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
	if err := requirePostgresVersion(mctx, cfg.DatabaseURL); err != nil {
		return err
	}
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

// requirePostgresVersion refuses, before any migration runs, a server older
// than AccountDB needs (an old server would fail half-way through them).
func requirePostgresVersion(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("cannot connect to PostgreSQL at %s: %w\n"+
			"is PostgreSQL running? Start it, or point DATABASE_URL at one (a superuser or a role with CREATEROLE)",
			tenantdb.Redact(url), err)
	}
	defer conn.Close(ctx)
	return tenantdb.RequireServerVersion(ctx, conn)
}

// startEmbeddedNATS runs nats-server in-process with JetStream on a free
// loopback port: never 4222, which another server may hold.
// It trusts keys only: no anonymous client, each component with its own
// permissions, as in production.
func startEmbeddedNATS(storeDir string, keys *natsauth.Keys) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "accountdb-dev",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		NoLog:      true,
	}
	if err := keys.ConfigureServer(opts); err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	ns, err := server.NewServer(opts)
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

// devNATSKeys are the embedded server's keys, generated into dir (0600)
// the first time, with the server configuration and the components'
// credentials beside them, as `accountdb nats init` writes them.
func devNATSKeys(dir string) (*natsauth.Keys, error) {
	keys, _, err := natsauth.LoadOrCreate(dir)
	if err != nil {
		return nil, fmt.Errorf("nats keys: %w", err)
	}
	if err := writeNATSFiles(dir, keys); err != nil {
		return nil, fmt.Errorf("nats keys: %w", err)
	}
	return keys, nil
}

// externalDevNATS are the connect options of dev's core and agent on an
// external server: the credentials files given, or none (an open
// development server; serve and agent never accept that).
func externalDevNATS(cfg *config) (core, agentOpts []nats.Option, err error) {
	if cfg.NATS.CredsFile != "" {
		if core, err = cfg.NATS.options(natsauth.Core()); err != nil {
			return nil, nil, err
		}
	}
	if f := os.Getenv("ACCOUNTDB_NATS_AGENT_CREDS"); f != "" {
		ac := *cfg.NATS
		ac.CredsFile = f
		if agentOpts, err = ac.options(natsauth.Agent()); err != nil {
			return nil, nil, err
		}
	}
	return core, agentOpts, nil
}
