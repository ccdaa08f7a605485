package projections

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

func TestIncrementalProjection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ts := tenants(3)
	e.startRelay(t)
	appendEvents(t, e.store, ts, 300)
	published := readEvents(t, e.store, 300)

	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	rec := &recorder{Projector: TenantActivity{}}
	start(t, NewRunner(e.db.App, e.js, rec, testOptions(m)))
	waitCaughtUp(t, e, rec.Name(), published[len(published)-1].Position)

	admin := e.db.AdminConn(t)
	if d := diffRows(expectedActivity(published), readActivity(t, admin)); d != "" {
		t.Fatal(d)
	}

	// More events while the runner is running: applied incrementally.
	appendEvents(t, e.store, ts, 100)
	published = readEvents(t, e.store, 400)
	waitCaughtUp(t, e, rec.Name(), published[len(published)-1].Position)
	if d := diffRows(expectedActivity(published), readActivity(t, admin)); d != "" {
		t.Fatal(d)
	}
	assertLogOrder(t, rec.applied(), published)

	waitApplied(t, m, rec.Name(), 400) // the checkpoint metric is set before it
	if got := value(t, m.checkpoint.WithLabelValues(rec.Name())); got != float64(published[len(published)-1].Position.GlobalPosition) {
		t.Fatalf("checkpoint metric = %v", got)
	}
	if got := value(t, m.lag.WithLabelValues(rec.Name())); got <= 0 || got > 60 {
		t.Fatalf("lag metric = %v", got)
	}

	// Each tenant sees its own rows only, through RLS, as the service role.
	want := expectedActivity(published)
	for _, tenant := range ts {
		var got []activityRow
		err := tenantdb.ReadTx(context.Background(), e.db.App, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
			got = readActivity(t, tx)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		mine := slices.DeleteFunc(slices.Clone(want), func(r activityRow) bool { return r.Tenant != tenant })
		if d := diffRows(mine, got); d != "" || len(mine) == 0 {
			t.Fatalf("tenant %s: %s", tenant, d)
		}
	}

	st, err := ReadStatus(context.Background(), e.db.App, rec.Name())
	if err != nil {
		t.Fatal(err)
	}
	last := published[len(published)-1]
	if st.Checkpoint != last.Position || st.Head != last.Position || st.Behind != 0 || st.Lag != 0 || !st.CaughtUp() {
		t.Fatalf("status after catching up: %+v", st)
	}
}

// assertLogOrder checks that the projector saw exactly the log, in log order,
// each event once.
func assertLogOrder(t *testing.T, applied []int64, log []eventlog.Event) {
	t.Helper()
	want := make([]int64, len(log))
	for i, e := range log {
		want[i] = e.Position.GlobalPosition
	}
	if !slices.Equal(applied, want) {
		t.Fatalf("applied positions %v, want log order %v", applied, want)
	}
}

func TestCrashBetweenCommitAndAck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ts := tenants(3)
	e.startRelay(t)
	appendEvents(t, e.store, ts, 120)
	published := readEvents(t, e.store, 120)
	last := published[len(published)-1].Position
	admin := e.db.AdminConn(t)

	// First life: commits every batch, then "crashes" before acking any.
	crashing := NewRunner(e.db.App, e.js, TenantActivity{}, testOptions(nil))
	crashing.withholdAcks = true
	stop := start(t, crashing)
	waitCaughtUp(t, e, crashing.p.Name(), last)
	stop()
	if d := diffRows(expectedActivity(published), readActivity(t, admin)); d != "" {
		t.Fatal(d)
	}
	cons, err := e.js.Consumer(context.Background(), DefaultStream, ConsumerName(crashing.p.Name()))
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending == 0 {
		t.Fatalf("the crashed runner acked messages: %+v", info)
	}

	// Second life: JetStream redelivers everything; the checkpoint makes each
	// redelivery a no-op, and the messages get acked this time.
	m := NewMetrics(nil)
	rec := &recorder{Projector: TenantActivity{}}
	start(t, NewRunner(e.db.App, e.js, rec, testOptions(m)))
	eventually(t, "redelivered messages acked", func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	if n := len(rec.applied()); n != 0 {
		t.Fatalf("redelivered events applied again: %d", n)
	}
	if d := diffRows(expectedActivity(published), readActivity(t, admin)); d != "" {
		t.Fatalf("after redelivery: %s", d)
	}

	// And it carries on with new events.
	appendEvents(t, e.store, ts, 30)
	published = readEvents(t, e.store, 150)
	more := published[120:]
	waitCaughtUp(t, e, rec.Name(), published[len(published)-1].Position)
	if d := diffRows(expectedActivity(published), readActivity(t, admin)); d != "" {
		t.Fatal(d)
	}
	assertLogOrder(t, rec.applied(), more)
	waitApplied(t, m, rec.Name(), 30)
}

func TestOutOfOrderDeliveryWaitsForPredecessor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ts := tenants(2)
	appendEvents(t, e.store, ts, 4)
	evs := readEvents(t, e.store, 4)
	m := NewMetrics(nil)
	rec := &recorder{Projector: TenantActivity{}}
	name := rec.Name()
	start(t, NewRunner(e.db.App, e.js, rec, testOptions(m)))

	publish(t, e.js, evs[0], eventlog.Start, evs[0].EventID.String())
	waitCaughtUp(t, e, name, evs[0].Position)

	// evs[2] and evs[3] arrive before evs[1]: the chain says they are not next.
	publish(t, e.js, evs[3], evs[2].Position, evs[3].EventID.String())
	publish(t, e.js, evs[2], evs[1].Position, evs[2].EventID.String())
	eventually(t, "gap noticed", func() bool { return value(t, m.gaps.WithLabelValues(name)) >= 2 })
	time.Sleep(300 * time.Millisecond) // a few redelivery rounds
	cp, err := ReadCheckpoint(context.Background(), e.db.App, name)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Position != evs[0].Position {
		t.Fatalf("checkpoint moved past a gap: %+v, want %+v", cp.Position, evs[0].Position)
	}
	if d := diffRows(expectedActivity(evs[:1]), readActivity(t, e.db.AdminConn(t))); d != "" {
		t.Fatalf("events ahead of the gap were applied: %s", d)
	}

	// A duplicate of an applied event (a relay republishing after JetStream's
	// dedupe window) is skipped.
	publish(t, e.js, evs[0], eventlog.Start, "republished-"+evs[0].EventID.String())

	// The predecessor arrives: everything applies, in log order.
	publish(t, e.js, evs[1], evs[0].Position, evs[1].EventID.String())
	waitCaughtUp(t, e, name, evs[3].Position)
	if d := diffRows(expectedActivity(evs), readActivity(t, e.db.AdminConn(t))); d != "" {
		t.Fatal(d)
	}
	assertLogOrder(t, rec.applied(), evs)
	cons, err := e.js.Consumer(context.Background(), DefaultStream, ConsumerName(name))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "all messages acked", func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	if n := len(rec.applied()); n != 4 {
		t.Fatalf("applied %d events, want 4", n)
	}
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.startRelay(t)
	appendEvents(t, e.store, tenants(2), 20)
	published := readEvents(t, e.store, 20)
	last := published[len(published)-1].Position
	name := TenantActivity{}.Name()

	if err := WaitFor(ctx, e.db.App, name, eventlog.Start); err != nil {
		t.Fatalf("start is always reached: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	err := WaitFor(short, e.db.App, name, last)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no runner: want deadline exceeded, got %v", err)
	}

	st, err := ReadStatus(ctx, e.db.App, name)
	if err != nil {
		t.Fatal(err)
	}
	if st.Checkpoint != eventlog.Start || st.Head != last || st.Behind != 20 || st.Lag <= 0 || st.CaughtUp() {
		t.Fatalf("status before the runner: %+v", st)
	}

	done := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, patience)
		defer cancel()
		done <- WaitFor(wctx, e.db.App, name, last)
	}()
	start(t, NewRunner(e.db.App, e.js, TenantActivity{}, testOptions(nil)))
	if err := <-done; err != nil {
		t.Fatalf("wait with a runner: %v", err)
	}
	cp, err := ReadCheckpoint(ctx, e.db.App, name)
	if err != nil || cp.Position != last || cp.UpdatedAt.IsZero() {
		t.Fatalf("checkpoint %+v, %v", cp, err)
	}
}
