package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"
)

// relayLag is one run of paced appends followed by the relay.
type relayLag struct {
	Appended   int
	AppendTime time.Duration
	Received   int
	ReceiveFor time.Duration // first append to last message received
	P50, P99   time.Duration
	Max        time.Duration
	AppendP99  time.Duration
}

func (r relayLag) AppendRate() float64  { return float64(r.Appended) / r.AppendTime.Seconds() }
func (r relayLag) ReceiveRate() float64 { return float64(r.Received) / r.ReceiveFor.Seconds() }

// measureRelayLag runs writers paced to perSecond for d while the relay publishes, with
// neighbour running beside them if it is not nil, and measures how long each
// event took from its append's return to a subscriber.
func (rb *bench) measureRelayLag(ctx context.Context, js jetstream.JetStream, label string, writers int, perSecond float64, d time.Duration,
	neighbour func(context.Context) error) (res relayLag, err error) {
	var (
		mu        sync.Mutex
		committed = make(map[string]time.Time, 64<<10)
		received  = make(map[string]time.Time, 64<<10)
		lastRecv  time.Time
	)
	cons, err := js.OrderedConsumer(ctx, bus.StreamName, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return res, fmt.Errorf("subscribe: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		now := time.Now()
		id := m.Headers().Get(jetstream.MsgIDHeader)
		mu.Lock()
		received[id] = now
		lastRecv = now
		mu.Unlock()
	})
	if err != nil {
		return res, fmt.Errorf("subscribe: %w", err)
	}
	defer cc.Stop()

	nctx, stopNeighbour := context.WithCancel(ctx)
	neighbourDone := make(chan error, 1)
	if neighbour != nil {
		go func() { neighbourDone <- neighbour(nctx) }()
	} else {
		neighbourDone <- nil
	}
	limiter := rate.NewLimiter(rate.Limit(perSecond), writers)
	start := time.Now()
	load, err := rb.appendLoad(ctx, label, writers, d, limiter, func(id uuid.UUID, at time.Time) {
		mu.Lock()
		committed[id.String()] = at
		mu.Unlock()
	})
	stopNeighbour()
	if nerr := <-neighbourDone; err == nil && nerr != nil && !errors.Is(nerr, context.Canceled) {
		err = fmt.Errorf("neighbour: %w", nerr)
	}
	if err != nil {
		return res, err
	}
	res.Appended, res.AppendTime, res.AppendP99 = load.Appends, load.Elapsed, load.P99

	// Drain: every appended event must arrive.
	drainBy := time.Now().Add(drainLimit)
	for {
		mu.Lock()
		missing := 0
		for id := range committed {
			if _, ok := received[id]; !ok {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(drainBy) {
			return res, fmt.Errorf("relay: %d of %d appended events not received %s after the appends stopped", missing, len(committed), drainLimit)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return res, err
		}
	}
	mu.Lock()
	lags := make([]time.Duration, 0, len(committed))
	for id, at := range committed {
		// The subscriber can hear of an event a hair before Append returns to
		// its writer: that is zero lag, not negative.
		lags = append(lags, max(0, received[id].Sub(at)))
	}
	res.Received = len(lags)
	res.ReceiveFor = lastRecv.Sub(start)
	mu.Unlock()
	res.P50, res.P99, res.Max = percentiles(lags)
	return res, nil
}

// holdTransactionIDs keeps a transaction of the database at url holding a
// transaction id, hold at a time, until ctx ends; it never appends.
func holdTransactionIDs(ctx context.Context, url string, hold time.Duration) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for ctx.Err() == nil {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `SELECT pg_current_xact_id(), pg_sleep($1)`, hold.Seconds())
			return err
		})
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
	return ctx.Err()
}
