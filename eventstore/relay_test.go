package eventstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/natstest"
	"github.com/accountdb/accountdb/internal/pgtest"
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
	nc, err := nats.Connect(e.url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	return nc, js
}

// startRelay runs a relay until the returned stop is called (or the test ends).
func (e *relayEnv) startRelay(js jetstream.JetStream, opts eventstore.RelayOptions) (*eventstore.Relay, func()) {
	e.t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(testLog{e.t}, nil))
	r := eventstore.NewRelay(e.store, js, opts)
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
		st, err := eventstore.NewStreamID(streamTypes[i%len(streamTypes)], uuid.New())
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
func (e *relayEnv) logEvents() []eventstore.Event {
	e.t.Helper()
	var out []eventstore.Event
	after := eventstore.Start
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
	s, err := js.Stream(context.Background(), eventstore.StreamName)
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
	s, err := js.Stream(ctx, eventstore.StreamName)
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
	prev := eventstore.Start
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
		if m.Subject() != eventstore.Subject(want) {
			t.Fatalf("message %d: subject %s, want %s", i, m.Subject(), eventstore.Subject(want))
		}
		pos, p, err := eventstore.MessagePositions(m.Headers())
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if pos != want.Position || p != prev {
			t.Fatalf("message %d: position %v prev %v, want %v prev %v", i, pos, p, want.Position, prev)
		}
		got, err := eventstore.DecodeMessage(m.Data())
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

func TestSubject(t *testing.T) {
	tenant := uuid.MustParse("0190f3c2-0000-7000-8000-000000000001")
	st, _ := eventstore.NewStreamID("vm", uuid.New())
	got := eventstore.Subject(eventstore.Event{TenantID: tenant, Stream: st, Type: "vm_created"})
	if want := "accountdb.events.0190f3c2-0000-7000-8000-000000000001.vm.vm_created"; got != want {
		t.Fatalf("subject %s, want %s", got, want)
	}
	if _, _, err := eventstore.MessagePositions(nats.Header{}); err == nil {
		t.Fatal("MessagePositions accepted a message without relay headers")
	}
	if _, err := eventstore.DecodeMessage([]byte(`{"type":1}`)); err == nil {
		t.Fatal("DecodeMessage accepted a malformed payload")
	}
}

func TestRelayPublishesInLogOrder(t *testing.T) {
	ctx := context.Background()
	env := newRelayEnv(t)
	_, js := env.connect()
	reg := prometheus.NewRegistry()
	r, _ := env.startRelay(js, eventstore.RelayOptions{BatchSize: 64, Registerer: reg})

	// Writers run concurrently, so commit order and position order differ.
	var wg sync.WaitGroup
	total := 0
	var mu sync.Mutex
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := env.appendEvents(ctx, 150, 1+w)
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	waitFor(t, 15*time.Second, "all events published", func() bool { return streamMsgCount(t, js) == uint64(total) })
	env.verifyStream(js)

	head, at, err := env.store.Head(ctx)
	if err != nil || at.IsZero() {
		t.Fatalf("head: %v %v", head, err)
	}
	waitFor(t, 5*time.Second, "checkpoint at head", func() bool { return r.Status().Checkpoint == head })
	st := r.Status()
	if !st.Active || st.LastPublishAt.IsZero() || st.LastError != "" {
		t.Fatalf("status after catching up: %+v", st)
	}
	if got := counterValue(t, reg, "accountdb_relay_published_events_total"); got != float64(total) {
		t.Fatalf("published counter %v, want %d", got, total)
	}
	if got := counterValue(t, reg, "accountdb_relay_active"); got != 1 {
		t.Fatalf("active gauge %v", got)
	}
}

func TestRelayRestartPublishesEachEventOnce(t *testing.T) {
	ctx := context.Background()
	env := newRelayEnv(t)
	nc1, js1 := env.connect()
	_, stop1 := env.startRelay(js1, eventstore.RelayOptions{BatchSize: 16})

	total := make(chan int, 1)
	go func() { total <- env.appendEvents(ctx, 600, 3) }()
	waitFor(t, 10*time.Second, "the first relay to publish", func() bool { return streamMsgCount(t, js1) >= 60 })
	stop1() // mid-stream: the writer is still appending and the relay publishing
	// Let the stopped relay's last messages land, so that the duplicate count
	// below measures the new relay alone.
	if err := nc1.Flush(); err != nil {
		t.Fatal(err)
	}
	last, stable := streamMsgCount(t, js1), 0
	for stable < 3 {
		time.Sleep(50 * time.Millisecond)
		if n := streamMsgCount(t, js1); n == last {
			stable++
		} else {
			last, stable = n, 0
		}
	}

	// Lose the checkpoint too, as if the relay died between JetStream's acks and
	// its checkpoint write: the next relay must continue from the stream's end
	// rather than publish everything again.
	if _, err := env.db.App.Exec(ctx, `UPDATE checkpoints SET transaction_id = 0, global_position = 0 WHERE name = 'relay'`); err != nil {
		t.Fatal(err)
	}
	_, js2 := env.connect()
	reg := prometheus.NewRegistry()
	r2, _ := env.startRelay(js2, eventstore.RelayOptions{BatchSize: 16, Registerer: reg})
	n := <-total
	waitFor(t, 15*time.Second, "all events published", func() bool { return streamMsgCount(t, js2) == uint64(n) })
	env.verifyStream(js2)
	if d := counterValue(t, reg, "accountdb_relay_duplicate_events_total"); d != 0 {
		t.Fatalf("restarted relay republished %v events", d)
	}
	waitFor(t, 5*time.Second, "checkpoint saved", func() bool {
		return r2.Status().Checkpoint == env.logEvents()[n-1].Position
	})
}

func TestRelayRidesOutNATSOutage(t *testing.T) {
	ctx := context.Background()
	env := newRelayEnv(t)
	_, js := env.connect()
	r, _ := env.startRelay(js, eventstore.RelayOptions{BatchSize: 50})

	first := env.appendEvents(ctx, 100, 4)
	waitFor(t, 10*time.Second, "first events published", func() bool { return streamMsgCount(t, js) == uint64(first) })
	before := env.logEvents()[first-1].Position
	waitFor(t, 5*time.Second, "checkpoint saved", func() bool { return r.Status().Checkpoint == before })

	env.srv.Stop()
	more := env.appendEvents(ctx, 150, 5)
	waitFor(t, 10*time.Second, "the relay to notice the outage", func() bool { return r.Status().LastError != "" })
	time.Sleep(300 * time.Millisecond)
	if st := r.Status(); st.Checkpoint != before || !st.Active || st.Lag <= 0 {
		t.Fatalf("during the outage: %+v, want checkpoint %v, active, lag > 0", st, before)
	}

	env.srv.Restart()
	waitFor(t, 15*time.Second, "catch-up after the outage", func() bool { return streamMsgCount(t, js) == uint64(first+more) })
	env.verifyStream(js)
	waitFor(t, 5*time.Second, "error cleared", func() bool { return r.Status().LastError == "" })
}

func TestRelayStandbyTakesOver(t *testing.T) {
	ctx := context.Background()
	env := newRelayEnv(t)
	_, jsA := env.connect()
	_, jsB := env.connect()
	opts := eventstore.RelayOptions{BatchSize: 32, LockRetryInterval: 100 * time.Millisecond}
	a, stopA := env.startRelay(jsA, opts)
	b, stopB := env.startRelay(jsB, opts)

	// Watch that the two are never active together.
	var both atomic.Bool
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watchCtx.Err() == nil {
			if a.Status().Active && b.Status().Active {
				both.Store(true)
			}
			time.Sleep(time.Millisecond)
		}
	}()

	total := make(chan int, 1)
	go func() { total <- env.appendEvents(ctx, 500, 2) }()
	waitFor(t, 10*time.Second, "one relay active and publishing", func() bool {
		return (a.Status().Active || b.Status().Active) && streamMsgCount(t, jsA) >= 50
	})
	active, standby, stopActive := a, b, stopA
	if b.Status().Active {
		active, standby, stopActive = b, a, stopB
	}
	if standby.Status().Active {
		t.Fatal("both relays active")
	}
	stopActive()
	if active.Status().Active {
		t.Fatal("a stopped relay reports active")
	}
	waitFor(t, 5*time.Second, "the standby to take over", func() bool { return standby.Status().Active })
	n := <-total
	waitFor(t, 15*time.Second, "all events published", func() bool { return streamMsgCount(t, jsA) == uint64(n) })
	stopWatch()
	<-watched
	if both.Load() {
		t.Fatal("two relays were active at the same time")
	}
	env.verifyStream(jsA)
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

func TestRelayStepsDownWhenItsLockSessionDies(t *testing.T) {
	ctx := context.Background()
	env := newRelayEnv(t)
	_, js := env.connect()
	r, _ := env.startRelay(js, eventstore.RelayOptions{BatchSize: 16, LockRetryInterval: 50 * time.Millisecond})

	total := make(chan int, 1)
	go func() { total <- env.appendEvents(ctx, 400, 2) }()
	waitFor(t, 10*time.Second, "publishing", func() bool { return streamMsgCount(t, js) >= 40 })

	// Kill the session holding the relay's advisory lock (the only single-key
	// advisory lock in this database).
	admin := env.db.AdminConn(t)
	var killed int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND objsubid = 1 AND granted
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d lock sessions, want 1", killed)
	}
	n := <-total
	waitFor(t, 15*time.Second, "all events published", func() bool { return streamMsgCount(t, js) == uint64(n) })
	env.verifyStream(js)
	waitFor(t, 5*time.Second, "the relay active again", func() bool { return r.Status().Active })
}
