package main

// The two stages of figure 11's lag: from the append's commit to the
// event's message stored in the stream (the relay: reading the log, which
// shows a commit only once every older transaction has ended, and
// publishing), and from there to the receiver (the dispatcher's workers).
// The stream's own timestamps split them, read after the run, so that
// nothing in the measured path changes.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// streamTimes is when the stream stored the message of each global
// position (the server's clock: the same machine's as the bench's).
func streamTimes(ctx context.Context, natsURL string) (map[int64]time.Time, error) {
	nc, err := nats.Connect(natsURL, nats.Name("accountdb-bench-webhook-stages"))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, bus.StreamName)
	if err != nil {
		return nil, err
	}
	last := s.CachedInfo().State.LastSeq
	out := make(map[int64]time.Time, last)
	if last == 0 {
		return out, nil
	}
	cons, err := js.OrderedConsumer(ctx, bus.StreamName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			if pos, _, err := bus.MessagePositions(m.Headers()); err == nil {
				out[pos.GlobalPosition] = meta.Timestamp
			}
			if meta.Sequence.Stream >= last {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("reading the stream's timestamps: nothing after %d messages, %d expected", len(out), last)
		}
	}
}

// stageLags splits each healthy delivery's lag at the stream; deliveries
// whose message is not found are left out (none are, in a run that
// passes).
type stageLags struct{ relay, dispatch []time.Duration }

func (s *stageLags) add(committed, stored, received time.Time) {
	if stored.IsZero() {
		return
	}
	s.relay = append(s.relay, stored.Sub(committed))
	s.dispatch = append(s.dispatch, received.Sub(stored))
}
