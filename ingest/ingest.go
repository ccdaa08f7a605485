// Package ingest is the core's side of the agent protocol: it consumes the
// ACCOUNTDB_AGENT stream (results, observations, inventory) through a durable
// JetStream consumer and hands each message to the command handler, which
// turns results and drift into events and caches inventory. Every handler is
// idempotent, so redelivery after a crash is harmless; a message is acked only
// once its effect is committed.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/commands"
	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerName is the durable consumer of the core; a stable identifier.
const ConsumerName = "core_agent_feed"

// Options tune the consumer and the deadline sweep.
type Options struct {
	// Deadline fails a VM action with no result after this long (default 10 min).
	Deadline time.Duration
	// SweepInterval is how often deadlines are checked (default Deadline/10, at least 1s).
	SweepInterval time.Duration
	Logger        *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Deadline <= 0 {
		o.Deadline = 10 * time.Minute
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = max(o.Deadline/10, time.Second)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Ingest consumes the agent's messages.
type Ingest struct {
	js       jetstream.JetStream
	commands *commands.Handler
	opts     Options
}

// New returns an ingest loop.
func New(js jetstream.JetStream, h *commands.Handler, opts Options) *Ingest {
	return &Ingest{js: js, commands: h, opts: opts.withDefaults()}
}

// Run consumes until ctx ends, retrying every failure; it also runs the
// deadline sweep.
func (in *Ingest) Run(ctx context.Context) error {
	go in.sweep(ctx)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := in.consume(ctx)
		if ctx.Err() != nil {
			break
		}
		in.opts.Logger.Warn("agent feed: consumer stopped; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	return ctx.Err()
}

func (in *Ingest) consume(ctx context.Context) error {
	stream, err := protocol.EnsureStream(ctx, in.js)
	if err != nil {
		return err
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: 64,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return err
	}
	l := newLanes(resultConcurrency)
	defer l.wait()
	for ctx.Err() == nil {
		batch, err := cons.Fetch(32, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return err
		}
		for msg := range batch.Messages() {
			in.dispatch(ctx, l, msg)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
	return ctx.Err()
}

// ackWait is how long a message delivered to a consumer that vanished (its
// NATS node or its process died, a pull response lost in a leader
// election) waits before redelivery: every result behind it waits as long
// (issue 19 saw 30 s, the former value). A message being handled is kept
// alive with InProgress every third of it; handling twice is harmless
// (every command here is idempotent).
const ackWait = 5 * time.Second

// dispatch hands a result or a guest's addresses to its VM's lane
// (lanes.go); any other message waits for every one before it and is
// handled here, alone.
func (in *Ingest) dispatch(ctx context.Context, l *lanes, msg jetstream.Msg) {
	switch protocol.MessageKind(msg.Headers()) {
	case protocol.KindResult:
		if r, err := protocol.DecodeResult(msg.Data()); err == nil {
			l.run(r.VMID, func() {
				in.handle(msg, func() error {
					_, err := in.commands.RecordResult(ctx, r)
					return err
				})
			})
			return
		}
	case protocol.KindGuestAddresses:
		if g, err := protocol.DecodeGuestAddresses(msg.Data()); err == nil {
			l.run(g.VMID, func() {
				in.handle(msg, func() error {
					_, err := in.commands.RecordGuestAddresses(ctx, g.TenantID, g.VMID, g.Addresses)
					return err
				})
			})
			return
		}
	}
	l.wait()
	in.handle(msg, func() error { return in.process(ctx, msg) })
}

// process hands a message other than a VM's (result, addresses) to the
// command handler, or one dispatch could not decode (process says why).
func (in *Ingest) process(ctx context.Context, msg jetstream.Msg) error {
	var err error
	switch kind := protocol.MessageKind(msg.Headers()); kind {
	case protocol.KindResult:
		var r protocol.Result
		if r, err = protocol.DecodeResult(msg.Data()); err == nil {
			_, err = in.commands.RecordResult(ctx, r)
		}
	case protocol.KindObservation:
		var o protocol.Observation
		if o, err = protocol.DecodeObservation(msg.Data()); err == nil {
			var n int
			if n, err = in.commands.RecordObservation(ctx, o); n > 0 {
				in.opts.Logger.Info("drift recorded", "cluster", o.ClusterID, "vms", n)
			}
		}
	case protocol.KindGuestAddresses:
		var g protocol.GuestAddresses
		if g, err = protocol.DecodeGuestAddresses(msg.Data()); err == nil {
			_, err = in.commands.RecordGuestAddresses(ctx, g.TenantID, g.VMID, g.Addresses)
		}
	case protocol.KindInventory:
		var inv protocol.Inventory
		if inv, err = protocol.DecodeInventory(msg.Data()); err == nil {
			err = in.commands.RecordInventory(ctx, inv)
		}
	default:
		err = fmt.Errorf("%w: kind %q", protocol.ErrInvalidMessage, kind)
	}
	return err
}

// handle runs process for msg, keeping msg from redelivery meanwhile, and
// acknowledges, refuses or redelivers it by process's outcome.
func (in *Ingest) handle(msg jetstream.Msg, process func() error) {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	err := process()
	if errors.Is(err, protocol.ErrInvalidMessage) {
		// A message no version of the core can read will never succeed:
		// terminate it rather than redeliver it forever.
		in.opts.Logger.Error("agent feed: undecodable message", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	if err != nil {
		in.opts.Logger.Warn("agent feed: handling failed; will retry", "subject", msg.Subject(), "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	_ = msg.Ack()
}

func (in *Ingest) sweep(ctx context.Context) {
	t := time.NewTicker(in.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := in.commands.SweepDeadlines(ctx, in.opts.Deadline)
			if err != nil && ctx.Err() == nil {
				in.opts.Logger.Warn("deadline sweep failed", "err", err)
			}
			if n > 0 {
				in.opts.Logger.Warn("VM actions timed out", "count", n, "deadline", in.opts.Deadline)
			}
		}
	}
}
