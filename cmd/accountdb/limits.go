package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/backupsched"
	"github.com/accountdb/accountdb/internal/app"
)

// defaultServeOpsAddr is where `serve` puts /metrics and the detailed
// /readyz: loopback, apart from the public API (`dev` keeps them on the API
// listener unless ACCOUNTDB_OPS_ADDR says otherwise).
const defaultServeOpsAddr = "127.0.0.1:9090"

// minPoolSize is the smallest pool ACCOUNTDB_DB_POOL_SIZE accepts: a
// command's transaction holds one connection while the store's look-ups
// take a second, and the relay, ingest and projectors need theirs beside the
// requests'.
const minPoolSize = 4

// bindServer registers the flags of the commands that serve the API:
// -ops-addr (opsDefault unless ACCOUNTDB_OPS_ADDR is set) and the limits.
func bindServer(fs *flag.FlagSet, c *config, opsDefault string) {
	fs.StringVar(&c.OpsAddr, "ops-addr", env("ACCOUNTDB_OPS_ADDR", opsDefault),
		"listen address of /healthz, /readyz (with detail) and /metrics; empty: on the API listener (env ACCOUNTDB_OPS_ADDR)")
	c.intVar(fs, &c.PoolSize, "db-pool-size", "ACCOUNTDB_DB_POOL_SIZE", int(app.DefaultPoolSize()),
		"PostgreSQL connections of the service, opened at start and kept; the default is 4 per CPU, 12 to 32")
	bindLimits(fs, c)
	bindAssistant(fs, c)
}

// bindLimits registers the caps and timeouts of api.Limits, each a flag
// with an environment variable, defaulting to api.DefaultLimits.
func bindLimits(fs *flag.FlagSet, c *config) {
	d := api.DefaultLimits
	l := &c.Limits
	intVar := func(p *int, name, envName string, def int, usage string) { c.intVar(fs, p, name, envName, def, usage) }
	durVar := func(p *time.Duration, name, envName string, def time.Duration, usage string) {
		c.durationVar(fs, p, name, envName, def, usage)
	}
	intVar(&l.ExportsPerUser, "exports-per-user", "ACCOUNTDB_EXPORTS_PER_USER", d.ExportsPerUser, "concurrent NDJSON audit exports per user")
	intVar(&l.ExportsPerTenant, "exports-per-tenant", "ACCOUNTDB_EXPORTS_PER_TENANT", d.ExportsPerTenant, "concurrent NDJSON audit exports per tenant")
	intVar(&l.StreamsPerUser, "streams-per-user", "ACCOUNTDB_STREAMS_PER_USER", d.StreamsPerUser, "concurrent GET /v1/events streams per user")
	intVar(&l.StreamsPerTenant, "streams-per-tenant", "ACCOUNTDB_STREAMS_PER_TENANT", d.StreamsPerTenant, "concurrent GET /v1/events streams per tenant")
	intVar(&l.ConsolesPerUser, "consoles-per-user", "ACCOUNTDB_CONSOLES_PER_USER", d.ConsolesPerUser, "concurrent VM consoles per user")
	intVar(&l.ConsolesPerVM, "consoles-per-vm", "ACCOUNTDB_CONSOLES_PER_VM", d.ConsolesPerVM, "concurrent consoles of one VM, whoever opened them")
	intVar(&l.ConsolesPerTenant, "consoles-per-tenant", "ACCOUNTDB_CONSOLES_PER_TENANT", d.ConsolesPerTenant, "concurrent VM consoles per tenant")
	durVar(&l.ConsoleIdleTimeout, "console-idle-timeout", "ACCOUNTDB_CONSOLE_IDLE_TIMEOUT", d.ConsoleIdleTimeout, "a console through which nothing moves for this long is closed")
	durVar(&l.ConsoleCheckInterval, "console-check-interval", "ACCOUNTDB_CONSOLE_CHECK_INTERVAL", d.ConsoleCheckInterval, "how often an open console re-checks its session, permission and VM")
	durVar(&l.ExportWriteTimeout, "export-write-timeout", "ACCOUNTDB_EXPORT_WRITE_TIMEOUT", d.ExportWriteTimeout, "an export whose client takes nothing for this long is dropped")
	durVar(&l.ReadHeaderTimeout, "http-read-header-timeout", "ACCOUNTDB_HTTP_READ_HEADER_TIMEOUT", d.ReadHeaderTimeout, "time to send a request's headers")
	durVar(&l.ReadTimeout, "http-read-timeout", "ACCOUNTDB_HTTP_READ_TIMEOUT", d.ReadTimeout, "time to send a whole request")
	durVar(&l.WriteTimeout, "http-write-timeout", "ACCOUNTDB_HTTP_WRITE_TIMEOUT", d.WriteTimeout, "time to take an answer (streams and exports set their own)")
	durVar(&l.IdleTimeout, "http-idle-timeout", "ACCOUNTDB_HTTP_IDLE_TIMEOUT", d.IdleTimeout, "an idle keep-alive connection is closed after this long")
	bindRates(fs, c)
	durVar(&c.MaxProjectorLag, "ready-max-projector-lag", "ACCOUNTDB_READY_MAX_PROJECTOR_LAG", app.DefaultMaxProjectorLag,
		"/readyz of the replica running a projector fails when its read model is this far behind")
	durVar(&c.BackupJitter, "backup-jitter", "ACCOUNTDB_BACKUP_JITTER", backupsched.DefaultJitter,
		"a backup schedule's run starts its VMs' backups spread over this window (0: all at the slot)")
	durVar(&c.BackupTick, "backup-scheduler-interval", "ACCOUNTDB_BACKUP_SCHEDULER_INTERVAL", backupsched.DefaultInterval,
		"how often the backup scheduler looks for due runs")
}

// rateFlag is a request rate flag: requests/window, as api.ParseRateLimit
// reads it.
type rateFlag struct{ l *api.RateLimit }

func (f rateFlag) String() string {
	if f.l == nil {
		return ""
	}
	return f.l.String()
}

func (f rateFlag) Set(s string) error {
	l, err := api.ParseRateLimit(s)
	if err != nil {
		return err
	}
	*f.l = l
	return nil
}

// bindRates registers the request rates of the API (api.DefaultUserRate
// and the like), each a flag with an environment variable: a deployment
// whose users are automation, or a benchmark, raises them.
func bindRates(fs *flag.FlagSet, c *config) {
	rateVar := func(p *api.RateLimit, name, envName string, def api.RateLimit, usage string) {
		*p = def
		if v := os.Getenv(envName); v != "" {
			l, err := api.ParseRateLimit(v)
			if err != nil {
				c.envErrs = append(c.envErrs, fmt.Errorf("%s: %w", envName, err))
			}
			*p = l
		}
		fs.Var(rateFlag{p}, name, usage+", as requests/window (env "+envName+")")
	}
	rateVar(&c.PublicRate, "rate-public", "ACCOUNTDB_RATE_PUBLIC", api.DefaultPublicRate,
		"requests per client address on sign-in, refresh and console sockets")
	rateVar(&c.UserRate, "rate-user", "ACCOUNTDB_RATE_USER", api.DefaultUserRate, "requests per user on the authenticated API")
	rateVar(&c.TenantRate, "rate-tenant", "ACCOUNTDB_RATE_TENANT", api.DefaultTenantRate, "requests per tenant on the authenticated API")
}

// backupSchedules is the scheduler's configuration from c.
func (c *config) backupSchedules() backupsched.Config {
	jitter := c.BackupJitter
	if jitter == 0 {
		jitter = -1 // none (backupsched reads 0 as its default)
	}
	return backupsched.Config{Interval: c.BackupTick, Jitter: jitter}
}

// validateLimits reports malformed environment values, negative limits and
// an operations address that is not host:port or is the API's.
func (c *config) validateLimits() error {
	errs := append([]error(nil), c.envErrs...)
	l := c.Limits
	for _, n := range []int{l.ExportsPerUser, l.ExportsPerTenant, l.StreamsPerUser, l.StreamsPerTenant, l.ConsolesPerUser, l.ConsolesPerVM, l.ConsolesPerTenant} {
		if n < 0 {
			errs = append(errs, errors.New("export, stream and console caps must not be negative"))
			break
		}
	}
	for _, d := range []time.Duration{l.ConsoleIdleTimeout, l.ConsoleCheckInterval, l.ExportWriteTimeout, l.ReadHeaderTimeout, l.ReadTimeout, l.WriteTimeout, l.IdleTimeout, c.MaxProjectorLag, c.BackupJitter, c.BackupTick} {
		if d < 0 {
			errs = append(errs, errors.New("timeouts must not be negative"))
			break
		}
	}
	if c.PoolSize != 0 && (c.PoolSize < minPoolSize || c.PoolSize > math.MaxInt32) {
		errs = append(errs, fmt.Errorf("ACCOUNTDB_DB_POOL_SIZE %d: want at least %d connections (0: the default)", c.PoolSize, minPoolSize))
	}
	if c.OpsAddr != "" {
		if _, _, err := net.SplitHostPort(c.OpsAddr); err != nil {
			errs = append(errs, fmt.Errorf("ACCOUNTDB_OPS_ADDR %q: %v", c.OpsAddr, err))
		} else if c.OpsAddr == c.HTTPAddr {
			errs = append(errs, errors.New("ACCOUNTDB_OPS_ADDR must differ from ACCOUNTDB_HTTP_ADDR (empty puts the operations endpoints on the API listener)"))
		}
	}
	return errors.Join(errs...)
}

// intVar registers an int flag whose default comes from envName when set
// (else def); an unparsable value is kept in c.envErrs for the command to
// report, as every environment variable of the config is.
func (c *config) intVar(fs *flag.FlagSet, p *int, name, envName string, def int, usage string) {
	*p = def
	if v := os.Getenv(envName); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("%s %q: want a whole number", envName, v))
		}
		*p = n
	}
	fs.IntVar(p, name, *p, usage+" (env "+envName+")")
}

// durationVar is intVar for a duration.
func (c *config) durationVar(fs *flag.FlagSet, p *time.Duration, name, envName string, def time.Duration, usage string) {
	*p = def
	if v := os.Getenv(envName); v != "" {
		t, err := time.ParseDuration(v)
		if err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("%s %q: want a duration such as 30s", envName, v))
		}
		*p = t
	}
	fs.DurationVar(p, name, *p, usage+" (env "+envName+")")
}
