package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/assistant"
	"github.com/accountdb/accountdb/migrations"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5/pgxpool"
)

// config is the process configuration: environment variables, each with a
// flag of the same meaning that overrides it.
type config struct {
	DatabaseURL    string // administrator URL: migrations and rebuilds only
	AppDatabaseURL string // the service role; derived from DatabaseURL when empty
	AppDBPassword  string // accountdb_app's password, when the server asks for one
	NATSURL        string // empty: an embedded server (dev only)
	HTTPAddr       string
	DataDir        string
	LogLevel       string
	OpsAddr        string     // serve and dev only (bindServer)
	Limits         api.Limits // serve and dev only (bindServer)
	// PoolSize bounds the service's PostgreSQL connections (serve and dev
	// only; zero: app.DefaultPoolSize).
	PoolSize int
	// PublicRate, UserRate and TenantRate are the API's request rates
	// (serve and dev only; zero: the API's defaults).
	PublicRate, UserRate, TenantRate api.RateLimit
	// MaxProjectorLag: /readyz of the replica running a projector fails
	// past it (serve and dev only).
	MaxProjectorLag time.Duration
	// BackupJitter and BackupTick: the backup scheduler's window over which
	// a run's backups start, and how often it looks (serve and dev only).
	BackupJitter, BackupTick time.Duration
	// Assistant and AssistantLimits: the assistant's model and bounds
	// (serve and dev only, assistant.go).
	Assistant       assistant.Config
	AssistantLimits api.AssistantLimits
	assistantTokens *int
	envErrs         []error // malformed environment values, reported by validate
	NATS            *natsClientConfig
}

const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres"

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// bindConfig registers the shared flags on fs with environment defaults.
func bindConfig(fs *flag.FlagSet) *config {
	c := &config{}
	fs.StringVar(&c.DatabaseURL, "database-url", env("DATABASE_URL", defaultDatabaseURL), "PostgreSQL administrator URL, for migrations (env DATABASE_URL)")
	fs.StringVar(&c.AppDatabaseURL, "app-database-url", env("ACCOUNTDB_APP_DATABASE_URL", ""), "URL the service connects with, as role accountdb_app; default: DATABASE_URL with that user (env ACCOUNTDB_APP_DATABASE_URL)")
	c.AppDBPassword = os.Getenv("ACCOUNTDB_APP_DB_PASSWORD") // a secret: environment only, never a flag
	fs.StringVar(&c.NATSURL, "nats-url", env("NATS_URL", ""), "NATS server URL; empty runs an embedded server in dev (env NATS_URL)")
	fs.StringVar(&c.HTTPAddr, "http-addr", env("ACCOUNTDB_HTTP_ADDR", "127.0.0.1:8080"), "HTTP listen address (env ACCOUNTDB_HTTP_ADDR)")
	fs.StringVar(&c.DataDir, "data-dir", env("ACCOUNTDB_DATA_DIR", "./.data"), "directory for local state: embedded NATS store, dev keys (env ACCOUNTDB_DATA_DIR)")
	fs.StringVar(&c.LogLevel, "log-level", env("ACCOUNTDB_LOG_LEVEL", "info"), "debug, info, warn or error (env ACCOUNTDB_LOG_LEVEL)")
	c.NATS = bindNATSClient(fs)
	return c
}

func (c *config) validate() error {
	var errs []error
	if !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		errs = append(errs, errors.New("DATABASE_URL must be a postgres:// URL"))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("ACCOUNTDB_HTTP_ADDR %q: %v", c.HTTPAddr, err))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("ACCOUNTDB_DATA_DIR must not be empty"))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateLimits(); err != nil {
		errs = append(errs, err)
	}
	if err := c.NATS.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// appURL is the service role's connection URL.
func (c *config) appURL() (string, error) {
	if c.AppDatabaseURL != "" {
		return c.AppDatabaseURL, nil
	}
	return tenantdb.AppURL(c.DatabaseURL, migrations.AppRole, c.AppDBPassword)
}

// openAppPool connects a pool as the service role for a one-shot CLI
// subcommand: at most maxConns connections, named name in pg_stat_activity.
func (c *config) openAppPool(ctx context.Context, maxConns int32, name string) (*pgxpool.Pool, error) {
	appURL, err := c.appURL()
	if err != nil {
		return nil, err
	}
	return tenantdb.Open(ctx, appURL, tenantdb.PoolOptions{MaxConns: maxConns, ApplicationName: name})
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func (c *config) logger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(os.Stderr)
	return fs.Parse(args)
}
