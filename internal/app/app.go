// Package app wires AccountDB's core service together: PostgreSQL pool,
// event store, command handler, relay, projectors and the HTTP API. The
// binary (cmd/accountdb) and the acceptance tests start the same System.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/api/pglimits"
	"github.com/accountdb/accountdb/assistant"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/auth/pgthrottle"
	"github.com/accountdb/accountdb/backupsched"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/commands/pgstore"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/ingest"
	"github.com/accountdb/accountdb/internal/jetstreams"
	"github.com/accountdb/accountdb/privacy"
	"github.com/accountdb/accountdb/projections"
	"github.com/accountdb/accountdb/relay"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/accountdb/accountdb/vault"
	"github.com/accountdb/accountdb/web"
	"github.com/accountdb/accountdb/webhooks"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
)

// Projectors is every read model the service keeps up to date. Names are
// stable identifiers: renaming one re-consumes the whole log.
func Projectors() []projections.Projector {
	return []projections.Projector{projections.TenantActivity{}, projections.Tenants{}, projections.Users{},
		projections.VMs{}, projections.Clusters{}, projections.UserSSHKeys{}, projections.IPPools{},
		projections.Webhooks{}, projections.UsageMeter{},
		projections.VMSnapshots{}, projections.Backups{}, projections.BackupSchedules{}}
}

// Readiness thresholds: beyond these, /readyz reports the follower as
// failing. DefaultMaxProjectorLag is Config.MaxProjectorLag's default.
const (
	maxRelayLag            = 30 * time.Second
	DefaultMaxProjectorLag = 60 * time.Second
)

// DefaultPoolSize bounds the service's PostgreSQL connections when
// Config.PoolSize does not: four per CPU, at least 12 and at most 32.
//
// A command holds one connection for its transaction, and the store's
// conflict and idempotency look-ups take a second briefly; ingest holds up
// to eight while it handles the agent's results. Beyond that, more
// connections than the machine can keep busy cost more than they bring: on
// 2 cores, 50 creates in flight ran at 200–250 VMs/s with 12 connections and
// 140 VMs/s with 32 (cold), PostgreSQL spending 3–4 ms of CPU per VM instead
// of 7, because each new backend loads its catalog caches and plans its
// statements before it is cheap, and more backends contend for the same two
// cores (docs/BENCHMARKS.md, "Issue 16, seventh session"). The CPUs counted
// are this process's: the usual deployment runs PostgreSQL on the same host;
// ACCOUNTDB_DB_POOL_SIZE sets it otherwise.
func DefaultPoolSize() int32 {
	return int32(min(32, max(12, 4*runtime.GOMAXPROCS(0))))
}

// Config is what Start needs; cmd fills it from flags and the environment.
type Config struct {
	// AppDatabaseURL connects as the service role (accountdb_app).
	AppDatabaseURL string
	NATSURL        string
	// NATSOptions authenticate the core (natsauth.RoleCore credentials and
	// inbox prefix) and configure TLS.
	NATSOptions []nats.Option
	// NATSReplicas is how many copies the streams the core owns keep
	// (ACCOUNTDB_NATS_REPLICAS); they are moved to it at start. Zero keeps
	// what they have.
	NATSReplicas int
	HTTPAddr     string
	// OpsAddr, when set, serves /healthz, /readyz (with each check's
	// detail) and /metrics on their own listener; the public one then has
	// no /metrics and a /readyz without detail. Empty: all on HTTPAddr.
	OpsAddr  string
	Identity Identity
	// Vault seals secrets the core stores (cluster token secrets); shared
	// with the agent.
	Vault *vault.Vault
	// DevLoopbackHTTP accepts clusters at http:// loopback URLs (`accountdb
	// dev`, whose simulator is in-process); never in production.
	DevLoopbackHTTP bool
	// VMDeadline fails a VM action whose result never came (default 10 min).
	VMDeadline time.Duration
	// RateLimits; zero values take the API's defaults.
	PublicRate, UserRate, TenantRate api.RateLimit
	// PoolSize bounds the service's PostgreSQL connections
	// (ACCOUNTDB_DB_POOL_SIZE; zero: DefaultPoolSize).
	PoolSize int32
	// KeepPoolOpen opens the whole pool at start and keeps it open through
	// idle periods, so that a burst never waits for new backends to warm up
	// (serve and dev do; tests leave it off to keep their connections few).
	KeepPoolOpen bool
	// Limits caps concurrent exports and streams and sets the HTTP
	// server's timeouts; zero fields take api.DefaultLimits.
	Limits api.Limits
	// MaxProjectorLag is how stale a read model may be before /readyz of
	// the replica running its projector fails (ACCOUNTDB_READY_MAX_PROJECTOR_LAG;
	// zero: DefaultMaxProjectorLag).
	MaxProjectorLag time.Duration
	// Webhooks tunes webhook delivery (its Guard's allowed CIDRs:
	// ACCOUNTDB_WEBHOOK_ALLOW_CIDRS); with DevLoopbackHTTP loopback
	// addresses are allowed too. Without a Vault no webhook is delivered.
	Webhooks webhooks.Options
	// BackupSchedules configures the backup scheduler (interval, jitter
	// window; zero: backupsched's defaults). Its Pool, Commands, Leases and
	// Log are filled by Start.
	BackupSchedules backupsched.Config
	// Assistant configures the assistant's model (ACCOUNTDB_ASSISTANT_*;
	// an empty URL: the feature is off) and AssistantLimits its rate and
	// caps (zero: the API's defaults).
	Assistant       assistant.Config
	AssistantLimits api.AssistantLimits
}

// Identity is the signing keys and HTTP trust settings.
type Identity struct {
	Keys           *auth.KeySet
	CursorKey      []byte
	CORSOrigins    []string
	TrustedProxies []netip.Prefix
}

// System is the core service: event store, relay, projectors and HTTP API.
type System struct {
	Store    *eventstore.Store
	Commands *commands.Handler
	Pool     *pgxpool.Pool
	// Privacy is the key store, sealer and revealer (nil without a vault).
	Privacy *Privacy
	// Retention applies the tenants' retention of request metadata (nil
	// without Privacy).
	Retention *privacy.Retention

	log      *slog.Logger
	reg      *prometheus.Registry
	nc       *nats.Conn
	relay    *relay.Relay
	ingest   *ingest.Ingest
	runners  []*projections.Runner
	leases   *projections.Leases
	notifier *projections.Notifier
	consoles *api.ConsoleDrain
	limits   *pglimits.Store
	webhooks *webhooks.Dispatcher // nil without a vault
	sched    *backupsched.Scheduler
	maxLag   time.Duration
	http     *http.Server
	listener net.Listener
	ops      *http.Server // nil: the operations endpoints are on http
	opsLn    net.Listener
}

// NewCommandHandler is the command handler every entry point uses. Its login
// throttles live in PostgreSQL, so every replica shares them.
func NewCommandHandler(store *eventstore.Store, keys *auth.KeySet) *commands.Handler {
	return commands.New(store, pgstore.New(store), auth.DefaultPasswordHasher(), commands.SessionConfig{Issuer: &auth.Issuer{Keys: keys},
		AccountThrottle: pgthrottle.New(store.Pool(), auth.ThrottleConfig{}),
		AddressThrottle: pgthrottle.New(store.Pool(), auth.ThrottleConfig{MaxFailures: 50})})
}

// Start connects everything; Run then serves until ctx ends.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (_ *System, err error) {
	s := &System{log: log, reg: prometheus.NewRegistry(), maxLag: cmp.Or(cfg.MaxProjectorLag, DefaultMaxProjectorLag),
		consoles: api.NewConsoleDrain()}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	poolOpts := tenantdb.PoolOptions{MaxConns: cmp.Or(cfg.PoolSize, DefaultPoolSize()), ApplicationName: "accountdb"}
	if cfg.KeepPoolOpen {
		poolOpts.MinConns = poolOpts.MaxConns
	}
	if s.Pool, err = tenantdb.Open(ctx, cfg.AppDatabaseURL, poolOpts); err != nil {
		return nil, err
	}
	vctx, vcancel := context.WithTimeout(ctx, 30*time.Second)
	defer vcancel()
	if err := tenantdb.RequireServerVersion(vctx, s.Pool); err != nil {
		return nil, err
	}
	if s.Privacy, err = OpenPrivacy(ctx, cfg.AppDatabaseURL, cfg.Vault); err != nil {
		return nil, err
	}
	s.Store = s.Privacy.Store(NewStore(eventstore.New(s.Pool, s.reg)))
	s.Commands = s.Privacy.Commands(NewCommandHandler(s.Store, cfg.Identity.Keys).WithVault(cfg.Vault).WithLogger(log))
	if cfg.DevLoopbackHTTP {
		s.Commands.AllowLoopbackHTTPClusters()
	}

	s.nc, err = nats.Connect(cfg.NATSURL, append([]nats.Option{
		nats.Name("accountdb"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("nats reconnected") }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Error("nats", "err", err) }),
	}, cfg.NATSOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	ensureCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := jetstreams.RequireServerVersion(ensureCtx, s.nc); err != nil {
		return nil, err
	}
	if err := ensureStreams(ensureCtx, js, cfg.NATSReplicas, log); err != nil {
		return nil, err
	}

	s.relay = relay.New(s.Store, js, relay.Options{Logger: log, Registerer: s.reg})
	s.ingest = ingest.New(js, s.Commands, ingest.Options{Deadline: cfg.VMDeadline, Logger: log})
	metrics := projections.NewMetrics(s.reg)
	// Every replica starts every runner; the leases let one run each
	// projector at a time, and the others stand by.
	s.leases = projections.NewLeases(s.Pool)
	s.notifier = projections.NewNotifier(s.Pool, log)
	s.limits = pglimits.New(s.Pool, log)
	for _, p := range Projectors() {
		s.runners = append(s.runners, projections.NewRunner(s.Pool, js, p, projections.RunnerOptions{Metrics: metrics, Logger: log,
			Upcasters: Upcasters(), Revealer: s.Privacy.EventRevealer(), Leases: s.leases, Log: s.Store}))
	}
	// One scheduler runs backup schedules, elected on the same leases.
	sc := cfg.BackupSchedules
	sc.Pool, sc.Commands, sc.Leases, sc.Log = s.Pool, s.Commands, s.leases, log
	s.sched = backupsched.New(sc)
	if s.Privacy != nil {
		s.Retention = privacy.NewRetention(privacy.RetentionConfig{Pool: s.Pool, Keys: s.Privacy.Keys, Policies: s.Commands,
			Leases: s.leases, Log: log})
	}

	if cfg.Vault != nil {
		wo := cfg.Webhooks
		if wo.Logger == nil {
			wo.Logger = log
		}
		wo.Revealer = s.Privacy.CachingRevealer()
		if cfg.DevLoopbackHTTP {
			wo.Guard.Allow = append(wo.Guard.Allow, netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
		}
		s.webhooks = webhooks.New(js, webhooks.NewStore(s.Pool), s.Commands, cfg.Vault, webhooks.StoreEvents{Store: s.Store}, wo)
	}

	lim := cfg.Limits.WithDefaults()
	errorLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	if cfg.OpsAddr != "" {
		if s.opsLn, err = net.Listen("tcp", cfg.OpsAddr); err != nil {
			return nil, fmt.Errorf("ops listen: %w", err)
		}
		s.ops = &http.Server{Handler: api.NewOpsHandler(log, s.reg, s.readiness()), ErrorLog: errorLog,
			ReadHeaderTimeout: lim.ReadHeaderTimeout, ReadTimeout: lim.ReadTimeout,
			WriteTimeout: lim.WriteTimeout, IdleTimeout: lim.IdleTimeout}
	}
	s.listener, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("http listen: %w", err)
	}
	s.http = &http.Server{
		Handler: api.NewHandler(api.Deps{Logger: log, Gatherer: s.reg, Readiness: s.readiness(), SeparateOps: s.ops != nil,
			CORSOrigins: cfg.Identity.CORSOrigins, TrustedProxies: cfg.Identity.TrustedProxies, CursorKey: cfg.Identity.CursorKey,
			V1: &api.V1{Commands: s.Commands, Pool: s.Pool, Store: s.Store, JS: js, Verifier: &auth.Verifier{Keys: cfg.Identity.Keys},
				PublicRate: cfg.PublicRate, UserRate: cfg.UserRate, TenantRate: cfg.TenantRate, Metrics: s.reg, Limits: lim, Vault: cfg.Vault,
				Checkpoints: s.notifier, RateCounter: s.limits, Slots: s.limits, ConsoleDrain: s.consoles,
				Revealer:  s.Privacy.CachingRevealer(),
				Assistant: assistant.New(cfg.Assistant, s.Store, s.Commands, assistant.PGBudget{Pool: s.Pool}, log), AssistantLimits: cfg.AssistantLimits},
			Console: web.Handler()}),
		// A client gets this long to send its request and to take the
		// answer; an idle keep-alive connection is closed after
		// IdleTimeout. Event streams and exports move their own deadlines.
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		ErrorLog:          errorLog,
	}
	return s, nil
}

// OtherCoreRunning says whether another core process (its relay) runs
// against the same database: a replica of this one.
func (s *System) OtherCoreRunning(ctx context.Context) (bool, error) {
	return relay.PublisherActive(ctx, s.Pool)
}

// Webhooks is the webhook dispatcher (nil without a vault).
func (s *System) Webhooks() *webhooks.Dispatcher { return s.webhooks }

// URL is where the HTTP API listens.
func (s *System) URL() string { return "http://" + s.listener.Addr().String() }

// OpsURL is where the operations endpoints listen: their own listener
// (Config.OpsAddr), else the API's.
func (s *System) OpsURL() string {
	if s.opsLn == nil {
		return s.URL()
	}
	return "http://" + s.opsLn.Addr().String()
}

// Run serves until ctx is cancelled, then shuts down gracefully: HTTP stops
// taking requests and drains, the relay and projectors finish the batch in hand.
func (s *System) Run(ctx context.Context) error {
	defer s.close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ignoreCancel(s.relay.Run(gctx)) })
	g.Go(func() error { return ignoreCancel(s.ingest.Run(gctx)) })
	// API tokens' last-used times, written in batches (commands/apitoken_usage.go).
	g.Go(func() error { return s.Commands.RunAPITokenUsage(gctx, 0) })
	g.Go(func() error { return ignoreCancel(s.notifier.Run(gctx)) })
	g.Go(func() error { return ignoreCancel(s.limits.Run(gctx)) })
	g.Go(func() error { return ignoreCancel(s.sched.Run(gctx)) })
	if s.Retention != nil {
		g.Go(func() error { return ignoreCancel(s.Retention.Run(gctx)) })
	}
	for _, r := range s.runners {
		g.Go(func() error { return ignoreCancel(r.Run(gctx)) })
	}
	if s.webhooks != nil {
		g.Go(func() error { return s.webhooks.Run(gctx) })
	}
	g.Go(func() error {
		if err := s.http.Serve(s.listener); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	if s.ops != nil {
		g.Go(func() error {
			if err := s.ops.Serve(s.opsLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("ops http: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if s.ops != nil {
			_ = s.ops.Shutdown(shutdownCtx)
		}
		err := s.http.Shutdown(shutdownCtx)
		// Open consoles are hijacked connections Shutdown leaves alone:
		// end them while the database is there for their console_closed.
		if derr := s.consoles.Drain(shutdownCtx); derr != nil {
			s.log.Warn("consoles still open at shutdown; their console_closed may be missing", "err", derr)
		}
		return err
	})
	return g.Wait()
}

// Close releases what Start opened, for a caller that does not Run.
func (s *System) Close() { s.close() }

func (s *System) close() {
	for _, ln := range []net.Listener{s.listener, s.opsLn} {
		if ln != nil {
			_ = ln.Close() // Serve never ran when Start failed; else closed already
		}
	}
	if s.leases != nil {
		s.leases.Close()
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.Pool != nil {
		s.Pool.Close()
	}
	s.Privacy.Close()
}

func ignoreCancel(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (s *System) readiness() []api.Check {
	checks := []api.Check{
		{Name: "postgres", Check: func(ctx context.Context) error {
			if err := s.Pool.Ping(ctx); err != nil {
				return errors.New("postgres unreachable")
			}
			return nil
		}},
		{Name: "nats", Check: func(context.Context) error {
			if !s.nc.IsConnected() {
				return fmt.Errorf("nats %s", s.nc.Status())
			}
			return nil
		}},
		{Name: "relay", Check: func(context.Context) error {
			st := s.relay.Status()
			switch {
			case st.Active && st.Lag > maxRelayLag:
				return fmt.Errorf("relay %s behind", st.Lag.Round(time.Second))
			case st.LastError != "" && time.Since(st.LastErrorAt) < 5*time.Second:
				return fmt.Errorf("relay failing: %s", st.LastError)
			}
			return nil
		}},
	}
	// A read model lives in the shared database, so its lag is the same
	// seen from every replica: only the replica running the projector
	// reports it, so that a lagging projector never makes every replica
	// unready at once (a load balancer would have no backend left, and
	// taking them all out cures nothing). docs/SCALING.md.
	for _, r := range s.runners {
		name := r.Projector().Name()
		checks = append(checks, api.Check{Name: "projector_" + name, Check: func(ctx context.Context) error {
			if !r.Leading() {
				return nil
			}
			st, err := r.Status(ctx)
			if err != nil {
				return errors.New("status unavailable")
			}
			if st.Lag > s.maxLag {
				return fmt.Errorf("%d events, %s behind", st.Behind, st.Lag.Round(time.Second))
			}
			return nil
		}})
	}
	return checks
}
