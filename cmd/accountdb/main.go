// Command accountdb is AccountDB's one binary. Each subcommand wires the
// packages together for one role; none holds logic of its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/accountdb/accountdb/internal/app"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func subcommands() []command {
	return []command{
		{"dev", "run the whole system in one process: embedded NATS, migrations, relay, projectors, pvesim, HTTP", runDev},
		{"serve", "run the API, relay and projectors against DATABASE_URL and NATS_URL", runServe},
		{"migrate", "apply pending database migrations to DATABASE_URL", runMigrate},
		{"admin", "`create-platform-admin --email <email> --password-stdin`", runAdmin},
		{"replay", "print a stream's timeline and resulting state: `--stream <type>-<uuid> [--until <RFC 3339>] [--tenant <uuid>]`", runReplay},
		{"projections", "projector tools: `status`, `rebuild <name>`", runProjections},
		{"audit", "`verify [--stream <id>] [--tenant <uuid>] [--anchor <file>]`: check the event log's hash chains (and anchors); `anchor [--out <file>]`: record the chains' heads", runAudit},
		{"nats", "the bus's security: `init --dir <dir>` (keys, server configuration, component credentials), `server-config`, `creds --tenant <uuid> --consumer <label>` (a subscriber's read-only credentials)", runNATS},
		{"agent", "run the Proxmox agent against NATS_URL (no database; see agent/README.md)", runAgent},
		{"pvesim", "run the Proxmox VE API simulator (see pvesim/README.md)", runPVESim},
		{"healthcheck", "probe a running server's /healthz (for container healthchecks)", runHealthcheck},
	}
}

func main() {
	app.TuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "accountdb:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("a subcommand is required")
		}
		return nil
	}
	for _, c := range subcommands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown subcommand %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: accountdb <subcommand> [flags]")
	for _, c := range subcommands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "Run `accountdb <subcommand> -h` for its flags; every flag also reads an environment variable (see README).")
}
