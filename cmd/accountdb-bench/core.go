package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/vault"
)

// benchCore is the core service (app.System: relay, ingest, projectors, HTTP
// API on a loopback port) over a fresh bench database and an embedded NATS
// server, with rate limits no benchmark reaches and only errors logged.
// Figures 5 (vms.go) and 6 (sse.go) run on it.
type benchCore struct {
	db      *benchDB
	natsURL string
	sys     *app.System
	vault   *vault.Vault // the secrets key the core was given; an agent needs the same
	log     *slog.Logger
	// stop stops the core (waiting at most 30s), then NATS, and drops the
	// database; it returns every error.
	stop func() error

	stopSys  func() error // stops sys alone (the first replica)
	cfg      app.Config
	cleanups *cleanupStack
}

func startCore(ctx context.Context, databaseURL string, configure ...func(*app.Config)) (_ *benchCore, err error) {
	c := &benchCore{log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
	cleanups := &cleanupStack{}
	c.stop, c.cleanups = cleanups.run, cleanups
	defer func() {
		if err != nil {
			_ = c.stop()
		}
	}()
	if c.db, err = openBenchDB(ctx, databaseURL); err != nil {
		return nil, err
	}
	cleanups.push(c.db.drop)
	natsURL, stopNATS, err := startNATS()
	if err != nil {
		return nil, err
	}
	c.natsURL = natsURL
	cleanups.push(func() error { stopNATS(); return nil })

	keys, err := newKeySet()
	if err != nil {
		return nil, err
	}
	if c.vault, err = vault.New(randomBytes(32)); err != nil {
		return nil, err
	}
	unlimited := api.RateLimit{N: 1_000_000_000, Window: time.Minute}
	c.cfg = app.Config{AppDatabaseURL: c.db.appURL, NATSURL: natsURL, HTTPAddr: "127.0.0.1:0",
		KeepPoolOpen: true, // as serve and dev keep theirs
		Identity:     app.Identity{Keys: keys, CursorKey: randomBytes(32)}, Vault: c.vault,
		// Request rates are lifted: the bench is one automation client
		// doing thousands of requests a minute, far past the per-user rate
		// meant for people. The caps on streams and exports stay at their
		// defaults (figure 6 spreads its subscribers over enough users).
		PublicRate: unlimited, UserRate: unlimited, TenantRate: unlimited,
		// Figure 10 opens its consoles as one user of one tenant: the
		// console caps per user and per tenant (4 and 32 by default) are
		// lifted past its count; the per-VM cap holds (one console each).
		Limits: api.Limits{ConsolesPerUser: 1024, ConsolesPerTenant: 1024}}
	for _, f := range configure {
		f(&c.cfg)
	}
	if c.sys, c.stopSys, err = c.startReplica(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// startReplica starts one more core instance (a `serve` replica) over the
// same database and NATS server; stop (also run by c.stop) ends it.
func (c *benchCore) startReplica(ctx context.Context) (*app.System, func() error, error) {
	sys, err := app.Start(ctx, c.cfg, c.log)
	if err != nil {
		return nil, nil, fmt.Errorf("start the core: %w", err)
	}
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	sysDone := make(chan error, 1)
	go func() { sysDone <- sys.Run(runCtx) }()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancelRun()
			select {
			case stopErr = <-sysDone:
			case <-time.After(30 * time.Second):
				stopErr = errors.New("the core did not stop within 30s")
			}
		})
		return stopErr
	}
	c.cleanups.push(stop)
	return sys, stop, nil
}

// cleanupStack undoes what a start did: run calls its functions last first
// and returns every error.
type cleanupStack []func() error

func (c *cleanupStack) push(f func() error) { *c = append(*c, f) }

func (c *cleanupStack) run() error {
	var errs []error
	for i := len(*c) - 1; i >= 0; i-- {
		errs = append(errs, (*c)[i]())
	}
	return errors.Join(errs...)
}

// newKeySet is a key set around a freshly generated signing key.
func newKeySet() (*auth.KeySet, error) {
	key, err := auth.GenerateKey()
	if err != nil {
		return nil, err
	}
	return auth.NewKeySet(key)
}
