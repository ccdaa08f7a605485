package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/accountdb/accountdb/internal/natstest"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/relay"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// relayEnv is one database and one embedded NATS server.
type relayEnv struct {
	t       *testing.T
	db      *pgtest.DB
	store   *eventstore.Store
	srv     *natstest.Server
	url     string
	tenants []uuid.UUID
	appends atomic.Int64
}

func newRelayEnv(t *testing.T) *relayEnv {
	t.Helper()
	db := pgtest.New(t)
	srv := natstest.Start(t)
	return &relayEnv{
		t: t, db: db, store: eventstore.New(db.App, nil), srv: srv, url: srv.URL(),
		tenants: []uuid.UUID{uuid.New(), uuid.New(), uuid.New()},
	}
}

// connect opens a client that keeps reconnecting, as the service's does.
func (e *relayEnv) connect() (*nats.Conn, jetstream.JetStream) {
	e.t.Helper()
	return e.srv.JetStream(e.t, natsauth.Core(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
}

// startRelay runs a relay until the returned stop is called (or the test ends).
func (e *relayEnv) startRelay(js jetstream.JetStream, opts relay.Options) (*relay.Relay, func()) {
	e.t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(testLog{e.t}, nil))
	r := relay.New(e.store, js, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("relay Run returned %v after cancel, want nil", err)
				}
			case <-time.After(10 * time.Second):
				e.t.Errorf("relay did not stop within 10s of cancel")
			}
		})
	}
	e.t.Cleanup(stop)
	return r, stop
}

var (
	streamTypes = []string{"vm", "tenant", "user"}
	eventTypes  = []string{"vm_created", "vm_started", "member_added"}
)

// appendEvents appends n events, a few per append, across tenants, stream
// types and event types, and returns how many it appended.
func (e *relayEnv) appendEvents(ctx context.Context, n, perAppend int) int {
	e.t.Helper()
	done := 0
	for done < n {
		i := int(e.appends.Add(1))
		st, err := eventlog.NewStreamID(streamTypes[i%len(streamTypes)], uuid.New())
		if err != nil {
			e.t.Error(err)
			return done
		}
		k := min(perAppend, n-done)
		evs := make([]eventstore.NewEvent, k)
		for j := range evs {
			evs[j] = eventstore.NewEvent{Type: eventTypes[(i+j)%len(eventTypes)], Data: map[string]int{"i": i, "j": j}}
		}
		if _, err := e.store.Append(ctx, eventstore.Append{Stream: st, TenantID: e.tenants[i%len(e.tenants)],
			Expected: eventstore.NoStream(), Events: evs}); err != nil {
			e.t.Errorf("append: %v", err)
			return done
		}
		done += k
	}
	return done
}

// logEvents is the whole committed log in log order.
func (e *relayEnv) logEvents() []eventlog.Event {
	e.t.Helper()
	var out []eventlog.Event
	after := eventlog.Start
	for {
		evs, err := e.store.ReadAll(context.Background(), after, eventstore.MaxReadLimit)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(evs) == 0 {
			return out
		}
		out = append(out, evs...)
		after = evs[len(evs)-1].Position
	}
}

func streamMsgCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), bus.StreamName)
	if err != nil {
		return 0
	}
	info, err := s.Info(context.Background())
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// consumeAll reads the whole stream with an ordered consumer.
func consumeAll(t *testing.T, js jetstream.JetStream) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for uint64(len(out)) < info.State.Msgs {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, m)
		}
		if batch.Error() != nil {
			t.Fatal(batch.Error())
		}
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d messages", len(out), info.State.Msgs)
		}
	}
	return out
}

// verifyStream checks the stream against the log: one message per event, in
// log order, with the right subject, id, headers, payload and prev chain.
func (e *relayEnv) verifyStream(js jetstream.JetStream) {
	t := e.t
	t.Helper()
	events := e.logEvents()
	msgs := consumeAll(t, js)
	if n := streamMsgCount(t, js); n != uint64(len(events)) {
		t.Fatalf("stream holds %d messages, the log %d events", n, len(events))
	}
	if len(msgs) != len(events) {
		t.Fatalf("consumed %d messages, the log has %d events", len(msgs), len(events))
	}
	seen := make(map[string]int, len(msgs))
	prev := eventlog.Start
	for i, m := range msgs {
		want := events[i]
		id := m.Headers().Get(jetstream.MsgIDHeader)
		seen[id]++
		if seen[id] > 1 {
			t.Fatalf("event %s published twice", id)
		}
		if id != want.EventID.String() {
			t.Fatalf("message %d: id %s, want %s (out of log order)", i, id, want.EventID)
		}
		if m.Subject() != bus.Subject(want) {
			t.Fatalf("message %d: subject %s, want %s", i, m.Subject(), bus.Subject(want))
		}
		pos, p, err := bus.MessagePositions(m.Headers())
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if pos != want.Position || p != prev {
			t.Fatalf("message %d: position %v prev %v, want %v prev %v", i, pos, p, want.Position, prev)
		}
		got, err := bus.DecodeMessage(m.Data())
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if got.EventID != want.EventID || got.Position != want.Position || got.Stream != want.Stream ||
			got.Type != want.Type || got.TenantID != want.TenantID || got.StreamVersion != want.StreamVersion ||
			!got.RecordedAt.Equal(want.RecordedAt) || !jsonEqual(got.Data, want.Data) {
			t.Fatalf("message %d: payload %+v, want %+v", i, got, want)
		}
		prev = pos
	}
}

// testLog sends the relay's log to the test's, shown when it fails.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func jsonEqual(a, b []byte) bool {
	var ca, cb bytes.Buffer
	return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
}

// counterValue reads a counter or gauge without labels from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
