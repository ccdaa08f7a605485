package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
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
}

func startCore(ctx context.Context, databaseURL string) (_ *benchCore, err error) {
	c := &benchCore{log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
	var cleanups cleanupStack
	c.stop = cleanups.run
	defer func() {
		if err != nil {
			_ = c.stop()
		}
	}()
	if c.db, err = openBenchDB(ctx, databaseURL); err != nil {
		return nil, err
	}
	cleanups = append(cleanups, c.db.drop)
	natsURL, stopNATS, err := startNATS()
	if err != nil {
		return nil, err
	}
	c.natsURL = natsURL
	cleanups = append(cleanups, func() error { stopNATS(); return nil })

	keys, err := newKeySet()
	if err != nil {
		return nil, err
	}
	if c.vault, err = vault.New(randomBytes(32)); err != nil {
		return nil, err
	}
	unlimited := api.RateLimit{N: 1_000_000_000, Window: time.Minute}
	c.sys, err = app.Start(ctx, app.Config{AppDatabaseURL: c.db.appURL, NATSURL: natsURL, HTTPAddr: "127.0.0.1:0",
		Identity: app.Identity{Keys: keys, CursorKey: randomBytes(32)}, Vault: c.vault,
		PublicRate: unlimited, UserRate: unlimited, TenantRate: unlimited}, c.log)
	if err != nil {
		return nil, fmt.Errorf("start the core: %w", err)
	}
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	sysDone := make(chan error, 1)
	go func() { sysDone <- c.sys.Run(runCtx) }()
	cleanups = append(cleanups, func() error {
		cancelRun()
		select {
		case err := <-sysDone:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("the core did not stop within 30s")
		}
	})
	return c, nil
}

// cleanupStack undoes what a start did: run calls its functions last first
// and returns every error.
type cleanupStack []func() error

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
