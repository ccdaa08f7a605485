package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/relay"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// relayResult is figure 4.
type relayResult struct {
	Backlog    int
	CatchUp    time.Duration
	Writers    int
	TargetRate float64
	Duration   time.Duration
	Sustained  relayLag
	// Beside is the same load for relayNeighbourDuration while another
	// transaction of the database holds a transaction id, NeighbourHold at a
	// time, and appends nothing: the log's watermark must not wait for it.
	NeighbourHold time.Duration
	Beside        relayLag
}

func (r relayResult) CatchUpRate() float64 { return float64(r.Backlog) / r.CatchUp.Seconds() }

// The neighbour of figure 4's second run.
const (
	relayNeighbourHold     = 500 * time.Millisecond
	relayNeighbourDuration = 5 * time.Second
)

// Limits of the relay phase: how long catching up with the backlog and
// draining after the appends stop may take before the run is called failed.
const (
	catchUpLimit = 2 * time.Minute
	drainLimit   = 30 * time.Second
)

// startNATS runs an embedded JetStream server on a free loopback port (never
// 4222, which a real server may hold) with its store in a temporary directory.
func startNATS() (url string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "accountdb-bench-nats-")
	if err != nil {
		return "", nil, err
	}
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("nats server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		os.RemoveAll(dir)
		return "", nil, errors.New("nats server: not ready after 10s")
	}
	return srv.ClientURL(), func() {
		srv.Shutdown()
		srv.WaitForShutdown()
		os.RemoveAll(dir)
	}, nil
}

// targetRate is the append rate the relay runs under: the one measured with
// the same number of writers in the append phase, or measured now.
func (b *bench) targetRate(ctx context.Context) (float64, error) {
	if b.cfg.RelayRate > 0 {
		return b.cfg.RelayRate, nil
	}
	for _, l := range b.rep.Appends {
		if l.Ours.Writers == b.cfg.RelayWriters {
			return l.Ours.Rate(), nil
		}
	}
	res, err := b.appendLoad(ctx, fmt.Sprintf("append rate at %d writers", b.cfg.RelayWriters), b.cfg.RelayWriters, 5*time.Second, nil, nil)
	return res.Rate(), err
}

func (b *bench) relayPhase(ctx context.Context) (err error) {
	res := relayResult{Writers: b.cfg.RelayWriters, Duration: b.cfg.RelayDuration}
	if res.TargetRate, err = b.targetRate(ctx); err != nil {
		return err
	}
	// A database of its own: the relay starts on a fresh stream and publishes
	// the whole log, so the log must hold a known backlog, not every event of
	// the earlier phases.
	db, err := openBenchDB(ctx, b.cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer func() {
		if derr := db.drop(); derr != nil && err == nil {
			err = derr
		}
	}()
	rb := &bench{cfg: b.cfg, db: db, rep: b.rep, tenant: b.tenant, actor: b.actor}
	if _, err := rb.seed(ctx, b.cfg.RelayBacklog); err != nil {
		return err
	}
	if _, err := db.admin.Exec(ctx, "ANALYZE events"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	natsURL, stopNATS, err := startNATS()
	if err != nil {
		return err
	}
	defer stopNATS()
	nc, err := nats.Connect(natsURL, nats.Name("accountdb-bench"))
	if err != nil {
		return fmt.Errorf("nats connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	stream, err := bus.EnsureStream(ctx, js)
	if err != nil {
		return err
	}

	// The relay publishes the backlog first, which measures its top speed.
	if res.Backlog, err = db.countEvents(ctx); err != nil {
		return err
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan struct{})
	publisher := relay.New(db.store, js, relay.Options{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	go func() {
		defer close(relayDone)
		_ = publisher.Run(relayCtx)
	}()
	defer func() {
		stopRelay()
		<-relayDone
	}()
	if res.CatchUp, err = waitForMessages(ctx, stream, res.Backlog); err != nil {
		return err
	}

	// Now the sustained load: paced appends, and a subscriber that notes when
	// each event arrives; then the same again beside a transaction that
	// holds an id without appending, as a long read-model write does.
	sustained, err := rb.measureRelayLag(ctx, js, fmt.Sprintf("relay under %d paced writers", res.Writers), res.Writers, res.TargetRate, res.Duration, nil)
	if err != nil {
		return err
	}
	res.Sustained = sustained
	res.NeighbourHold = relayNeighbourHold
	beside, err := rb.measureRelayLag(ctx, js, fmt.Sprintf("relay under %d paced writers, beside a transaction holding an id", res.Writers),
		res.Writers, res.TargetRate, relayNeighbourDuration, func(nctx context.Context) error {
			return holdTransactionIDs(nctx, db.adminURL, relayNeighbourHold)
		})
	if err != nil {
		return err
	}
	res.Beside = beside
	b.rep.setRelay(res)
	return nil
}

// waitForMessages waits until the stream holds n messages and returns how long
// that took.
func waitForMessages(ctx context.Context, stream jetstream.Stream, n int) (time.Duration, error) {
	start := time.Now()
	var have atomic.Uint64
	stop := startProgress(fmt.Sprintf("relay catching up with %d events", n), 0, func() string { return fmt.Sprintf("%d published", have.Load()) })
	defer stop()
	for have.Load() < uint64(n) {
		if time.Since(start) > catchUpLimit {
			return 0, fmt.Errorf("relay: only %d of %d events published after %s", have.Load(), n, catchUpLimit)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return 0, err
		}
		info, err := stream.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("stream info: %w", err)
		}
		have.Store(info.State.Msgs)
	}
	return time.Since(start), nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
