package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/accountdb/accountdb/migrations"
	"github.com/accountdb/accountdb/pvesim"
)

// runServe is the production service: an external NATS, migrations already
// applied (the compose file runs `accountdb migrate` first).
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg := bindConfig(fs)
	bindServer(fs, cfg, defaultServeOpsAddr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.NATSURL == "" {
		return errors.New("serve needs NATS_URL (only `accountdb dev` embeds a NATS server)")
	}
	if err := checkProductionSecrets(cfg, os.Getenv("ACCOUNTDB_SECRETS_KEY")); err != nil {
		return err
	}
	log := cfg.logger(stderr)
	natsOpts, err := cfg.NATS.options(natsauth.Core())
	if err != nil {
		return err
	}
	acfg, err := appConfig(cfg, cfg.NATSURL, natsOpts)
	if err != nil {
		return err
	}
	acfg.NATSReplicas = cfg.NATS.Replicas
	acfg.MaxProjectorLag = cfg.MaxProjectorLag
	if acfg.Webhooks, err = webhookOptions(); err != nil {
		return err
	}
	acfg.BackupSchedules = cfg.backupSchedules()
	sys, err := app.Start(ctx, acfg, log)
	if err != nil {
		return err
	}
	if err := requireSharedSigningKey(ctx, sys, cfg, log); err != nil {
		sys.Close()
		return err
	}
	log.Info("serving", "http", sys.URL(), "ops", sys.OpsURL())
	return sys.Run(ctx)
}

// requireSharedSigningKey refuses to run several `serve` replicas with
// signing keys of their own. Without ACCOUNTDB_JWT_PRIVATE_KEY a replica
// signs with a key generated into its data directory, and every other
// replica answers 401 to its tokens: half the requests behind a load
// balancer. A clustered bus (ACCOUNTDB_NATS_REPLICAS above 1) or another
// core already running against the database says there are replicas. A
// lone replica is warned, since a second one may come later.
func requireSharedSigningKey(ctx context.Context, sys *app.System, cfg *config, log *slog.Logger) error {
	if os.Getenv("ACCOUNTDB_JWT_PRIVATE_KEY") != "" {
		return nil
	}
	const why = "ACCOUNTDB_JWT_PRIVATE_KEY is not set, so this replica would sign access tokens with a key of its own " +
		"(generated into its data directory) that the other replicas refuse (401); give every replica the same " +
		"ACCOUNTDB_JWT_PRIVATE_KEY (docs/SCALING.md)"
	if cfg.NATS.Replicas > 1 {
		return fmt.Errorf("a clustered deployment (ACCOUNTDB_NATS_REPLICAS=%d): %s", cfg.NATS.Replicas, why)
	}
	other, err := sys.OtherCoreRunning(ctx)
	if err != nil {
		return err
	}
	if other {
		return errors.New("another accountdb serve runs against this database: " + why)
	}
	log.Warn("ACCOUNTDB_JWT_PRIVATE_KEY is not set: signing with the key in the data directory; " +
		"a second serve replica would refuse this one's tokens (it refuses to start that way)")
	return nil
}

func runMigrate(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	cfg := bindConfig(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := migrateOrExplain(ctx, cfg, stdout); err != nil {
		return err
	}
	current, latest, err := migrations.Status(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema at version %d (latest %d)\n", current, latest)
	return nil
}

func runPVESim(ctx context.Context, args []string, stdout, _ io.Writer) error {
	return pvesim.RunCommand(ctx, args, stdout)
}

// runHealthcheck exits 0 when the server answers /healthz with 200: the
// container images have no curl or wget.
func runHealthcheck(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080/healthz", "URL to probe")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", *url, resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
