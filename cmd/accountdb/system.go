package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/projections"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
)

// projectors is every read model the service keeps up to date. Names are
// stable identifiers: renaming one re-consumes the whole log.
func projectors() []projections.Projector {
	return []projections.Projector{projections.TenantActivity{}, projections.Tenants{}, projections.Users{}}
}

// Readiness thresholds: beyond these, /readyz reports the follower as failing.
const (
	maxRelayLag     = 30 * time.Second
	maxProjectorLag = 60 * time.Second
)

// system is the core service: event store, relay, projectors and HTTP API.
type system struct {
	log      *slog.Logger
	reg      *prometheus.Registry
	pool     *pgxpool.Pool
	store    *eventstore.Store
	commands *commands.Handler
	nc       *nats.Conn
	relay    *eventstore.Relay
	runners  []*projections.Runner
	http     *http.Server
	listener net.Listener
}

// startSystem connects everything; run then serves until ctx ends.
func startSystem(ctx context.Context, cfg *config, log *slog.Logger, natsURL string) (_ *system, err error) {
	s := &system{log: log, reg: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	appURL, err := cfg.appURL()
	if err != nil {
		return nil, err
	}
	if s.pool, err = tenantdb.Open(ctx, appURL, tenantdb.PoolOptions{ApplicationName: "accountdb"}); err != nil {
		return nil, err
	}
	s.store = eventstore.New(s.pool, s.reg)
	ident, err := loadIdentity(cfg)
	if err != nil {
		return nil, err
	}
	s.commands = newCommandHandler(s.store, ident.keys)

	s.nc, err = nats.Connect(natsURL,
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

	s.relay = eventstore.NewRelay(s.store, js, eventstore.RelayOptions{Logger: log, Registerer: s.reg})
	metrics := projections.NewMetrics(s.reg)
	for _, p := range projectors() {
		s.runners = append(s.runners, projections.NewRunner(s.pool, js, p, projections.RunnerOptions{Metrics: metrics, Logger: log}))
	}

	s.listener, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("http listen: %w", err)
	}
	s.http = &http.Server{
		Handler: api.NewRouter(api.Deps{Logger: log, Gatherer: s.reg, Readiness: s.readiness(),
			CORSOrigins: ident.corsOrigins, TrustedProxies: ident.trustedProxies, CursorKey: ident.cursorKey,
			Identity: &api.Identity{Commands: s.commands, Pool: s.pool, Store: s.store, Verifier: &auth.Verifier{Keys: ident.keys}}}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// URL is where the HTTP API listens.
func (s *system) URL() string { return "http://" + s.listener.Addr().String() }

// run serves until ctx is cancelled, then shuts down gracefully: HTTP stops
// taking requests and drains, the relay and projectors finish the batch in hand.
func (s *system) run(ctx context.Context) error {
	defer s.close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ignoreCancel(s.relay.Run(gctx)) })
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

func (s *system) close() {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
}

func ignoreCancel(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (s *system) readiness() []api.Check {
	checks := []api.Check{
		{Name: "postgres", Check: func(ctx context.Context) error {
			if err := s.pool.Ping(ctx); err != nil {
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
