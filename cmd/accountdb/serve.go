package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/accountdb/accountdb/agent/pvesim"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/migrations"
)

// runServe is the production service: an external NATS, migrations already
// applied (the compose file runs `accountdb migrate` first).
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg := bindConfig(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.NATSURL == "" {
		return errors.New("serve needs NATS_URL (only `accountdb dev` embeds a NATS server)")
	}
	log := cfg.logger(stderr)
	acfg, err := appConfig(cfg, cfg.NATSURL)
	if err != nil {
		return err
	}
	sys, err := app.Start(ctx, acfg, log)
	if err != nil {
		return err
	}
	log.Info("serving", "http", sys.URL())
	return sys.Run(ctx)
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
