package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
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
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// env is one test's database, event store and JetStream.
type env struct {
	t     *testing.T
	db    *pgtest.DB
	store *eventstore.Store
	js    jetstream.JetStream
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := pgtest.New(t)
	srv := natstest.Start(t)
	_, js := srv.JetStream(t, natsauth.Core())
	if _, err := bus.EnsureStream(context.Background(), js); err != nil {
		t.Fatal(err)
	}
	store := eventstore.New(db.App, nil)
	return &env{t: t, db: db, store: store, js: js}
}

// startRelay runs the real relay until the test ends. Tests that publish by
// hand (to misorder messages) must not run it: it refuses a stream that holds
// messages it did not publish.
func (e *env) startRelay(t *testing.T) {
	t.Helper()
	publisher := relay.New(e.store, e.js, relay.Options{Logger: quietLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = publisher.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// relayMessage is the message the relay would publish for e. Tests that need
// to misorder messages publish by hand, without running the relay.
func relayMessage(e eventlog.Event, prev eventlog.Position, msgID string) *nats.Msg {
	data, err := json.Marshal(e)
	if err != nil {
		panic(err) // an Event always marshals
	}
	m := nats.NewMsg(bus.Subject(e))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	m.Header.Set(bus.HeaderPosition, strconv.FormatInt(e.Position.GlobalPosition, 10))
	m.Header.Set(bus.HeaderTransactionID, strconv.FormatUint(e.Position.TransactionID, 10))
	m.Header.Set(bus.HeaderPrevPosition, strconv.FormatInt(prev.GlobalPosition, 10))
	m.Header.Set(bus.HeaderPrevTransactionID, strconv.FormatUint(prev.TransactionID, 10))
	return m
}

func publish(t *testing.T, js jetstream.JetStream, e eventlog.Event, prev eventlog.Position, msgID string) {
	t.Helper()
	if _, err := js.PublishMsg(context.Background(), relayMessage(e, prev, msgID)); err != nil {
		t.Fatalf("publish %d: %v", e.Position.GlobalPosition, err)
	}
}

var (
	streamTypes = []string{"vm", "user", "tenant"}
	eventTypes  = []string{"created", "renamed", "started", "stopped"}
)

// appendEvents appends n events spread over tenants, stream types and event
// types, several events per append, and returns nothing: tests read the log
// back to know what they wrote.
func appendEvents(t *testing.T, s *eventstore.Store, tenants []uuid.UUID, n int) {
	t.Helper()
	ctx := context.Background()
	for i, a := 0, 0; i < n; a++ {
		tenant := tenants[a%len(tenants)]
		st, err := eventlog.NewStreamID(streamTypes[(a/len(tenants))%len(streamTypes)], uuid.New())
		if err != nil {
			t.Fatal(err)
		}
		var evs []eventstore.NewEvent
		for k := 0; k < 1+a%4 && i < n; k++ {
			evs = append(evs, eventstore.NewEvent{Type: eventTypes[(i/2)%len(eventTypes)], Data: map[string]int{"i": i}})
			i++
		}
		if _, err := s.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(), Events: evs}); err != nil {
			t.Fatal(err)
		}
	}
}

func tenants(n int) []uuid.UUID {
	out := make([]uuid.UUID, n)
	for i := range out {
		out[i] = uuid.New()
	}
	return out
}

// activityRow is one row of tenant_activity.
type activityRow struct {
	Tenant       uuid.UUID
	StreamType   string
	EventType    string
	Count        int64
	LastPosition int64
	LastRecorded time.Time
}

// expectedActivity is tenant_activity computed straight from events.
func expectedActivity(evs []eventlog.Event) []activityRow {
	idx := map[[3]string]int{}
	var rows []activityRow
	for _, e := range evs {
		k := [3]string{e.TenantID.String(), e.Stream.Type, e.Type}
		i, ok := idx[k]
		if !ok {
			i = len(rows)
			idx[k] = i
			rows = append(rows, activityRow{Tenant: e.TenantID, StreamType: e.Stream.Type, EventType: e.Type})
		}
		rows[i].Count++
		rows[i].LastPosition = e.Position.GlobalPosition
		rows[i].LastRecorded = e.RecordedAt
	}
	sortRows(rows)
	return rows
}

func sortRows(rows []activityRow) {
	slices.SortFunc(rows, func(a, b activityRow) int {
		if c := slices.Compare(a.Tenant[:], b.Tenant[:]); c != 0 {
			return c
		}
		if a.StreamType != b.StreamType {
			return compareStrings(a.StreamType, b.StreamType)
		}
		return compareStrings(a.EventType, b.EventType)
	})
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type rowQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// readActivity reads tenant_activity through q, as whatever role and scope q has.
func readActivity(t *testing.T, q rowQuerier) []activityRow {
	t.Helper()
	rows, err := q.Query(context.Background(), `SELECT tenant_id, stream_type, event_type, event_count,
		last_position, last_recorded_at FROM tenant_activity`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (activityRow, error) {
		var a activityRow
		err := r.Scan(&a.Tenant, &a.StreamType, &a.EventType, &a.Count, &a.LastPosition, &a.LastRecorded)
		a.LastRecorded = a.LastRecorded.UTC()
		return a, err
	})
	if err != nil {
		t.Fatal(err)
	}
	sortRows(out)
	return out
}

func diffRows(want, got []activityRow) string {
	if slices.EqualFunc(want, got, func(a, b activityRow) bool {
		return a == b || (a.Tenant == b.Tenant &&
			a.StreamType == b.StreamType && a.EventType == b.EventType && a.Count == b.Count &&
			a.LastPosition == b.LastPosition && a.LastRecorded.Equal(b.LastRecorded))
	}) {
		return ""
	}
	return fmt.Sprintf("want %d rows:\n%v\ngot %d rows:\n%v", len(want), want, len(got), got)
}

// readEvents reads the first n events of the log, waiting for them to pass
// ReadAll's watermark.
func readEvents(t *testing.T, s *eventstore.Store, n int) []eventlog.Event {
	t.Helper()
	var out []eventlog.Event
	after := eventlog.Start
	deadline := time.Now().Add(patience)
	for len(out) < n {
		evs, err := s.ReadAll(context.Background(), after, n-len(out))
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d events became readable", len(out), n)
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		out = append(out, evs...)
		after = evs[len(evs)-1].Position
	}
	return out
}

// recorder wraps a projector and records the positions it applied, in order.
type recorder struct {
	Projector
	mu        sync.Mutex
	positions []int64
}

func (r *recorder) Apply(ctx context.Context, tx pgx.Tx, e eventlog.Event) error {
	if err := r.Projector.Apply(ctx, tx, e); err != nil {
		return err
	}
	r.mu.Lock()
	r.positions = append(r.positions, e.Position.GlobalPosition)
	r.mu.Unlock()
	return nil
}

func (r *recorder) applied() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.positions)
}

func testOptions(m *Metrics) RunnerOptions {
	return RunnerOptions{
		FetchWait:     time.Second,
		AckWait:       time.Second,
		GapDelay:      100 * time.Millisecond,
		MinRetryDelay: 50 * time.Millisecond,
		MaxRetryDelay: 500 * time.Millisecond,
		Metrics:       m,
		Logger:        quietLogger(),
	}
}

// start runs r until the test ends or the returned stop is called.
func start(t *testing.T, r *Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("runner did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitCaughtUp(t *testing.T, e *env, name string, pos eventlog.Position) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := WaitFor(ctx, e.db.App, name, pos); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// value reads a counter's or gauge's current value.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}

// waitApplied waits for projector's applied-events counter to reach want
// and fails if it is past it: the counter moves just after a batch
// commits, and waitCaughtUp returns once the commit is seen.
func waitApplied(t *testing.T, m *Metrics, projector string, want float64) {
	t.Helper()
	c := m.applied.WithLabelValues(projector)
	eventually(t, fmt.Sprintf("the applied metric to reach %v", want), func() bool { return value(t, c) >= want })
	if got := value(t, c); got != want {
		t.Fatalf("applied metric %v, want %v", got, want)
	}
}

// patience bounds every wait of these tests for the relay, the runner and
// ReadAll's watermark. It is generous because CI runs every package at once
// on two cores.
const patience = 30 * time.Second
