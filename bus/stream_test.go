package bus_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/internal/natstest"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func connect(t *testing.T) jetstream.JetStream {
	t.Helper()
	ns := natstest.Start(t)
	nc, err := nats.Connect(ns.URL(), ns.CoreOptions(t)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestEnsureStreamDeclaresTheEventsStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js := connect(t)
	s, err := bus.EnsureStream(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.EnsureStream(ctx, js); err != nil {
		t.Fatalf("second EnsureStream: %v", err)
	}
	cfg := s.CachedInfo().Config
	if cfg.Name != "ACCOUNTDB_EVENTS" || !slices.Equal(cfg.Subjects, []string{"accountdb.events.>"}) ||
		cfg.Storage != jetstream.FileStorage || cfg.Retention != jetstream.LimitsPolicy ||
		cfg.Discard != jetstream.DiscardOld || cfg.Duplicates != 2*time.Minute || !cfg.AllowDirect {
		t.Fatalf("stream config %+v", cfg)
	}
}

// What the relay's exactly-once delivery rests on: JetStream drops a message
// published again, and refuses one whose predecessor is not the stream's last.
func TestStreamDropsDuplicatesAndOutOfOrderMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js := connect(t)
	if _, err := bus.EnsureStream(ctx, js); err != nil {
		t.Fatal(err)
	}
	first := sampleEvent(t)
	second := sampleEvent(t)
	second.EventID, second.Position = uuid.New(), eventlog.Position{TransactionID: 813, GlobalPosition: 43}

	publish := func(e eventlog.Event, prev eventlog.Position, lastSeq uint64) (*jetstream.PubAck, error) {
		msg, err := bus.NewMessage(e, prev, lastSeq)
		if err != nil {
			t.Fatal(err)
		}
		return js.PublishMsg(ctx, msg)
	}
	ack, err := publish(first, eventlog.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A retry of the same publish finds it stored: refused (the stream has
	// moved on), never stored twice.
	var apiErr *jetstream.APIError
	if _, err := publish(first, eventlog.Start, 0); !errors.As(err, &apiErr) {
		t.Fatalf("republished first event: error %v, want JetStream to refuse it", err)
	}
	// A retry that expects the right sequence is dropped as a duplicate.
	if dup, err := publish(first, eventlog.Start, ack.Sequence); err != nil || !dup.Duplicate {
		t.Fatalf("republished first event after itself: ack %+v err %v, want a duplicate", dup, err)
	}
	if _, err := publish(second, first.Position, ack.Sequence+1); !errors.As(err, &apiErr) {
		t.Fatalf("out-of-order publish: error %v, want JetStream to refuse it", err)
	}
	if _, err := publish(second, first.Position, ack.Sequence); err != nil {
		t.Fatalf("in-order publish: %v", err)
	}
	info, err := js.Stream(ctx, bus.StreamName)
	if err != nil || info.CachedInfo().State.Msgs != 2 {
		t.Fatalf("stream holds %+v (err %v), want 2 messages", info.CachedInfo().State, err)
	}
}
