// Package app wires AccountDB's core service together: PostgreSQL pool,
// event store, command handler, relay, projectors and the HTTP API. The
// binary (cmd/accountdb) and the acceptance tests start the same System.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/auth/pgthrottle"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/ingest"
	"github.com/accountdb/accountdb/projections"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/accountdb/accountdb/vault"
	"github.com/accountdb/accountdb/web"
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
		projections.VMs{}, projections.Clusters{}}
}

// Readiness thresholds: beyond these, /readyz reports the follower as failing.
const (
	maxRelayLag     = 30 * time.Second
	maxProjectorLag = 60 * time.Second
)

// PoolSize bounds the service's PostgreSQL connections. A command holds one
// for its transaction; the store's conflict and idempotency look-ups take a
// second briefly, so the pool must be larger than the concurrent commands.
const PoolSize = 32

// Config is what Start needs; cmd fills it from flags and the environment.
type Config struct {
	// AppDatabaseURL connects as the service role (accountdb_app).
	AppDatabaseURL string
	NATSURL        string
	HTTPAddr       string
	Identity       Identity
	// Vault seals secrets the core stores (cluster token secrets); shared
	// with the agent.
	Vault *vault.Vault
	// VMDeadline fails a VM action whose result never came (default 10 min).
	VMDeadline time.Duration
	// RateLimits; zero values take the API's defaults.
	PublicRate, UserRate, TenantRate api.RateLimit
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

	log      *slog.Logger
	reg      *prometheus.Registry
	nc       *nats.Conn
	relay    *eventstore.Relay
	ingest   *ingest.Ingest
	runners  []*projections.Runner
	http     *http.Server
	listener net.Listener
}

// NewCommandHandler is the command handler every entry point uses. Its login
// throttles live in PostgreSQL, so every replica shares them.
func NewCommandHandler(store *eventstore.Store, keys *auth.KeySet) *commands.Handler {
	return commands.New(store, auth.DefaultPasswordHasher(), commands.SessionConfig{Issuer: &auth.Issuer{Keys: keys},
		AccountThrottle: pgthrottle.New(store.Pool(), auth.ThrottleConfig{}),
		AddressThrottle: pgthrottle.New(store.Pool(), auth.ThrottleConfig{MaxFailures: 50})})
}

// Start connects everything; Run then serves until ctx ends.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (_ *System, err error) {
	s := &System{log: log, reg: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if s.Pool, err = tenantdb.Open(ctx, cfg.AppDatabaseURL, tenantdb.PoolOptions{MaxConns: PoolSize, ApplicationName: "accountdb"}); err != nil {
		return nil, err
	}
	s.Store = NewStore(eventstore.New(s.Pool, s.reg))
	s.Commands = NewCommandHandler(s.Store, cfg.Identity.Keys).WithVault(cfg.Vault).WithLogger(log)

	s.nc, err = nats.Connect(cfg.NATSURL,
		nats.Name("accountdb"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("nats reconnected") }),
	)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	ensureCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := eventstore.EnsureStream(ensureCtx, js); err != nil {
		return nil, fmt.Errorf("jetstream stream: %w", err)
	}

	s.relay = eventstore.NewRelay(s.Store, js, eventstore.RelayOptions{Logger: log, Registerer: s.reg})
	s.ingest = ingest.New(js, s.Commands, ingest.Options{Deadline: cfg.VMDeadline, Logger: log})
	metrics := projections.NewMetrics(s.reg)
	for _, p := range Projectors() {
		s.runners = append(s.runners, projections.NewRunner(s.Pool, js, p, projections.RunnerOptions{Metrics: metrics, Logger: log, Upcasters: Upcasters()}))
	}

	s.listener, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("http listen: %w", err)
	}
	s.http = &http.Server{
		Handler: api.NewRouter(api.Deps{Logger: log, Gatherer: s.reg, Readiness: s.readiness(),
			CORSOrigins: cfg.Identity.CORSOrigins, TrustedProxies: cfg.Identity.TrustedProxies, CursorKey: cfg.Identity.CursorKey,
			Identity: &api.Identity{Commands: s.Commands, Pool: s.Pool, Store: s.Store, JS: js, Verifier: &auth.Verifier{Keys: cfg.Identity.Keys},
				PublicRate: cfg.PublicRate, UserRate: cfg.UserRate, TenantRate: cfg.TenantRate, Metrics: s.reg},
			Console: web.Handler()}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// URL is where the HTTP API listens.
func (s *System) URL() string { return "http://" + s.listener.Addr().String() }

// Run serves until ctx is cancelled, then shuts down gracefully: HTTP stops
// taking requests and drains, the relay and projectors finish the batch in hand.
func (s *System) Run(ctx context.Context) error {
	defer s.close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ignoreCancel(s.relay.Run(gctx)) })
	g.Go(func() error { return ignoreCancel(s.ingest.Run(gctx)) })
	for _, r := range s.runners {
		g.Go(func() error { return ignoreCancel(r.Run(gctx)) })
	}
	g.Go(func() error {
		if err := s.http.Serve(s.listener); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return s.http.Shutdown(shutdownCtx)
	})
	return g.Wait()
}

func (s *System) close() {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.Pool != nil {
		s.Pool.Close()
	}
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
	for _, r := range s.runners {
		name := r.Projector().Name()
		checks = append(checks, api.Check{Name: "projector_" + name, Check: func(ctx context.Context) error {
			st, err := r.Status(ctx)
			if err != nil {
				return errors.New("status unavailable")
			}
			if st.Lag > maxProjectorLag {
				return fmt.Errorf("%d events, %s behind", st.Behind, st.Lag.Round(time.Second))
			}
			return nil
		}})
	}
	return checks
}
