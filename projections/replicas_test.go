package projections

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Two replicas each start a runner of the same projector: one applies, the
// other stands by (no message is handed back for a gap, as when both pulled
// from the one durable consumer). When the leader's lease session is killed,
// a runner leads again on a live session (either: the one that lost it
// retries at once); when the leader's process dies, the other takes over.
func TestOneRunnerPerProjectorAcrossReplicas(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ts := tenants(3)
	e.startRelay(t)
	admin := e.db.AdminConn(t)
	m := NewMetrics(prometheus.NewRegistry())
	name := TenantActivity{}.Name()
	a := startReplica(t, e, m)
	eventually(t, "runner A to lead", a.run.Leading)
	b := startReplica(t, e, m)

	appendEvents(t, e.store, ts, 300)
	published := readEvents(t, e.store, 300)
	waitCaughtUp(t, e, name, published[len(published)-1].Position)
	if b.run.Leading() || len(b.rec.applied()) != 0 {
		t.Fatalf("the standby applied %d events (leading %v)", len(b.rec.applied()), b.run.Leading())
	}
	if gaps := value(t, m.gaps.WithLabelValues(name)); gaps != 0 {
		t.Fatalf("%v messages handed back for gaps with one runner applying", gaps)
	}

	// A's lease session is killed (its connection dropped): A notices
	// within a check and stands by unless it wins the lease back.
	killed := leaseHolder(t, admin, name)
	if killed == 0 {
		t.Fatal("no session holds the lease A leads under")
	}
	terminate(t, admin, killed)
	eventually(t, "one runner to lead on a live session", func() bool {
		holder := leaseHolder(t, admin, name)
		return holder != 0 && holder != killed && a.run.Leading() != b.run.Leading()
	})
	appendEvents(t, e.store, ts, 100)
	published = readEvents(t, e.store, 400)
	waitCaughtUp(t, e, name, published[len(published)-1].Position)

	// The leader's process dies: the other takes over and carries on.
	leader, standby := a, b
	if b.run.Leading() {
		leader, standby = b, a
	}
	appliedBefore := len(standby.rec.applied())
	leader.die()
	eventually(t, "the standby to lead", standby.run.Leading)
	appendEvents(t, e.store, ts, 100)
	published = readEvents(t, e.store, 500)
	waitCaughtUp(t, e, name, published[len(published)-1].Position)
	if d := diffRows(expectedActivity(published), readActivity(t, admin)); d != "" {
		t.Fatal(d)
	}
	if len(standby.rec.applied()) == appliedBefore {
		t.Fatal("the runner that took over applied nothing")
	}
	// Each event applied once, in log order, across the terms: every
	// handover above happens between batches (the log is idle), so no
	// batch was rolled back after its events were recorded.
	all := slices.Concat(a.rec.applied(), b.rec.applied())
	slices.Sort(all) // appendEvents appends one by one: log order is position order
	assertLogOrder(t, all, published)
}

// A runner that finds a gap reads the missing events from the log at once
// rather than waiting for JetStream to redeliver them: here the missing
// event is never published at all.
func TestGapIsFilledFromTheLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	appendEvents(t, e.store, tenants(2), 40)
	evs := readEvents(t, e.store, 40)
	rec := &recorder{Projector: TenantActivity{}}
	opts := testOptions(NewMetrics(nil))
	opts.GapDelay = time.Hour // a gap left to redelivery would never close
	opts.Log = e.store
	start(t, NewRunner(e.db.App, e.js, rec, opts))

	publish(t, e.js, evs[0], eventlog.Start, evs[0].EventID.String())
	waitCaughtUp(t, e, rec.Name(), evs[0].Position)
	// Everything after evs[1] arrives; evs[1..38] never do.
	publish(t, e.js, evs[39], evs[38].Position, evs[39].EventID.String())
	waitCaughtUp(t, e, rec.Name(), evs[39].Position)
	if d := diffRows(expectedActivity(evs), readActivity(t, e.db.AdminConn(t))); d != "" {
		t.Fatal(d)
	}
	assertLogOrder(t, rec.applied(), evs)
}

// A committed batch notifies every replica's Notifier, which wakes the
// read-your-writes waits of that projector.
func TestNotifierWakesWaitersOnCommit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := NewNotifier(e.db.App, quietLogger())
	go func() { _ = n.Run(ctx) }()
	name := TenantActivity{}.Name()
	eventually(t, "the notifier to listen", func() bool { _, up := n.next(name); return up })
	moved, _ := n.next(name)

	e.startRelay(t)
	appendEvents(t, e.store, tenants(1), 5)
	published := readEvents(t, e.store, 5)
	start(t, NewRunner(e.db.App, e.js, TenantActivity{}, testOptions(nil)))
	select {
	case <-moved:
	case <-time.After(patience):
		t.Fatal("no notification after the projector committed")
	}
	wctx, wcancel := context.WithTimeout(ctx, patience)
	defer wcancel()
	if err := n.WaitFor(wctx, e.db.App, name, published[4].Position); err != nil {
		t.Fatal(err)
	}
}

// replica is one process's runner of TenantActivity with its own lease session.
type replica struct {
	run    *Runner
	rec    *recorder
	leases *Leases
	stop   func()
}

func startReplica(t *testing.T, e *env, m *Metrics) *replica {
	t.Helper()
	r := &replica{rec: &recorder{Projector: TenantActivity{}}, leases: NewLeases(e.db.App)}
	t.Cleanup(r.leases.Close)
	opts := testOptions(m)
	opts.Leases, opts.LeaseRetryInterval = r.leases, 50*time.Millisecond
	r.run = NewRunner(e.db.App, e.js, r.rec, opts)
	r.stop = start(t, r.run)
	return r
}

// die ends the replica as a process's death would: its runner stops and
// its lease session closes.
func (r *replica) die() {
	r.stop()
	r.leases.Close()
}

// leaseHolder is the backend holding projector's run lock (0: none).
func leaseHolder(t *testing.T, admin *pgx.Conn, projector string) int32 {
	t.Helper()
	var pid int32
	err := admin.QueryRow(context.Background(), `SELECT coalesce(max(pid), 0) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 2
		  AND classid = `+runLockNamespace+` AND objid::bigint = hashtext($1)::bigint & 4294967295
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, projector).Scan(&pid)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func terminate(t *testing.T, admin *pgx.Conn, pid int32) {
	t.Helper()
	var ok bool
	if err := admin.QueryRow(context.Background(), `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate backend %d: %v, %v", pid, ok, err)
	}
}
