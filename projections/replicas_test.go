package projections

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/prometheus/client_golang/prometheus"
)

// Two replicas each start a runner of the same projector: one applies, the
// other stands by (no message is handed back for a gap, as when both pulled
// from the one durable consumer), and takes over when the first's lease
// session goes away.
func TestOneRunnerPerProjectorAcrossReplicas(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ts := tenants(3)
	e.startRelay(t)
	m := NewMetrics(prometheus.NewRegistry())
	name := TenantActivity{}.Name()
	leasesA, leasesB := NewLeases(e.db.App), NewLeases(e.db.App)
	t.Cleanup(leasesA.Close)
	t.Cleanup(leasesB.Close)
	optsA, optsB := testOptions(m), testOptions(m)
	optsA.Leases, optsB.Leases = leasesA, leasesB
	optsA.LeaseRetryInterval, optsB.LeaseRetryInterval = 50*time.Millisecond, 50*time.Millisecond
	recA, recB := &recorder{Projector: TenantActivity{}}, &recorder{Projector: TenantActivity{}}
	runA, runB := NewRunner(e.db.App, e.js, recA, optsA), NewRunner(e.db.App, e.js, recB, optsB)
	start(t, runA)
	eventually(t, "runner A to lead", runA.Leading)
	start(t, runB)

	appendEvents(t, e.store, ts, 300)
	published := readEvents(t, e.store, 300)
	waitCaughtUp(t, e, name, published[len(published)-1].Position)
	if runB.Leading() || len(recB.applied()) != 0 {
		t.Fatalf("the standby applied %d events (leading %v)", len(recB.applied()), runB.Leading())
	}
	if gaps := value(t, m.gaps.WithLabelValues(name)); gaps != 0 {
		t.Fatalf("%v messages handed back for gaps with one runner applying", gaps)
	}

	// A's session ends (its process died): B takes over and carries on.
	leasesA.Close()
	eventually(t, "runner B to lead", runB.Leading)
	appendEvents(t, e.store, ts, 100)
	published = readEvents(t, e.store, 400)
	waitCaughtUp(t, e, name, published[len(published)-1].Position)
	if d := diffRows(expectedActivity(published), readActivity(t, e.db.AdminConn(t))); d != "" {
		t.Fatal(d)
	}
	if len(recB.applied()) == 0 {
		t.Fatal("runner B applied nothing after taking over")
	}
	// Each event applied once, in log order, across the two terms (a batch
	// A had in hand when it lost the lease may be applied by B instead,
	// never by both: the checkpoint decides).
	all := slices.Concat(recA.applied(), recB.applied())
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
