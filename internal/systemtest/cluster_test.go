// Package systemtest runs AccountDB's clustered topology in-process and
// breaks it one piece at a time (docs/SCALING.md, issue 19).
package systemtest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/natstest"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/jackc/pgx/v5"
)

// TestClusterSurvivesLosingAnyOneProcess: three NATS nodes clustered on
// loopback (every stream and bucket on 3 replicas), two core instances
// over one database, two agents, pvesim, and a trickle of VM commands
// through both instances. Then, one at a time: the instance whose relay
// leads stops (a new one starts), the relay leader's session dies, the agent leader crashes, the NATS node leading the events stream
// stops, PostgreSQL (a throwaway cluster) crashes and restarts, and one
// core instance stops with event-stream clients connected.
// After each, unattended: every accepted command gets exactly one result.
// At the end: the stream holds the log exactly (no event lost, none
// twice, in order), no guest was created twice, every read model equals a
// rebuild, and the clients, resumed with Last-Event-ID on the other
// instance, saw their tenant's events without a gap. Recovery times are
// logged, never asserted.
func TestClusterSurvivesLosingAnyOneProcess(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	pg := pgtest.StartServer(t) // a cluster of its own: the test restarts it
	a := stacktest.Start(t, stacktest.Options{Cluster: c, Postgres: pg})
	// a's relay leads before b starts: the relay leader is known.
	stacktest.Eventually(t, 30*time.Second, "the first instance's relay to lead", func() bool {
		held, err := a.Sys.OtherCoreRunning(context.Background())
		return err == nil && held
	})
	b := a.Replica(t)
	px := a.RegisterProxmox(t, pvesim.Options{TimeScale: 10 * time.Millisecond})
	// Short lease and redelivery, so that a crashed leader's work comes
	// back within the test's patience (defaults: 15 s and 60 s); the
	// reconciliation at its usual pace (stacktest's 300 ms would flood the
	// core with observations of every guest).
	fast := func(cfg *agent.Config) {
		cfg.LeaseTTL, cfg.AckWait, cfg.ReconcileInterval = 6*time.Second, 6*time.Second, 5*time.Second
	}
	agents := []*stacktest.Agent{a.StartAgent(t, fast), a.StartAgent(t, fast)}
	tenant := a.TenantWithQuota(t, "cluster", domain.Quota{MaxVMs: 1000, MaxCores: 1000, MaxMemoryMB: 1 << 20, MaxDiskGB: 100_000})
	token := a.Login(t, a.User(t, tenant, auth.RoleTenantAdmin)).AccessToken
	conn := a.DB.AdminConn(t)

	// Event-stream clients on b, the instance stopped last.
	followers := []*follower{follow(t, b.URL, token), follow(t, b.URL, token)}
	tr := startTrickle(t, token, a.URL, b.URL)
	survivor := a // the instance still running when b stops last
	waitAccepted(t, tr, 10)
	t.Logf("steady state: settled in %s", settle(t, conn, tenant, "steady state"))

	fault := func(name string, inject func()) {
		t.Helper()
		before := tr.accepted.Load()
		began := time.Now()
		inject()
		waitAccepted(t, tr, before+5) // commands keep being accepted after it
		settle(t, conn, tenant, name)
		t.Logf("%s: every command accepted since settled %s after the fault (%d accepted, %d refused, %d attempts retried so far)",
			name, time.Since(began).Round(time.Millisecond), tr.accepted.Load(), tr.refused.Load(), tr.retried.Load())
	}

	fault("relay leader's instance stopped", func() {
		a.Stop() // b's relay and projectors take over; a process manager starts a new instance
		survivor = b.Replica(t)
		tr.setCores(survivor.URL, b.URL)
	})

	fault("relay leader's session killed", func() {
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
			WHERE locktype = 'advisory' AND granted AND classid = x'41636344'::bigint::oid AND objid = x'4272'::int8 * 65536 + x'6c79'::int8
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("terminate the relay's lock session: %d sessions, %v", n, err)
		}
	})

	fault("agent leader crashed", func() {
		i := slices.IndexFunc(agents, func(ag *stacktest.Agent) bool { return ag.Leader() })
		if i < 0 {
			t.Fatal("no agent leads")
		}
		agents[i].Crash()
		agents[i] = a.StartAgent(t, fast) // the process manager starts it again
	})

	var stopped *natstest.Server
	fault("NATS node leading the events stream stopped", func() {
		s, err := a.JetStream(t).Stream(context.Background(), bus.StreamName)
		if err != nil {
			t.Fatal(err)
		}
		info := s.CachedInfo()
		if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" {
			t.Fatalf("events stream: %d replicas, cluster %+v; want 3 with a leader", info.Config.Replicas, info.Cluster)
		}
		stopped = c.Node(info.Cluster.Leader)
		stopped.Stop()
	})
	stopped.Start()
	c.WaitForMetaLeader(t)

	fault("PostgreSQL restarted (crashed, recovered from its WAL)", func() {
		pg.Crash(t)
		pg.Start(t)
		conn = a.DB.AdminConn(t) // the test's own session ended with the server
	})

	fault("core instance with event-stream clients stopped", func() {
		tr.setCores(survivor.URL)
		b.Stop()
		for _, f := range followers {
			select {
			case <-f.ended():
			case <-time.After(30 * time.Second):
				t.Fatal("an event stream of the stopped instance stays open")
			}
			f.resume(survivor.URL) // the load balancer sends the reconnection there
		}
	})
	tr.halt()
	t.Logf("final: settled in %s", settle(t, conn, tenant, "final"))

	// A 202 promises the command is stored: after PostgreSQL's crash too.
	// And every command stored was answered 202 once, retries included
	// (the Idempotency-Key returned the first answer): none was stored
	// twice or behind the client's back.
	accepted := tr.acceptedPositions()
	if n := count(t, conn, `SELECT count(*) FROM events WHERE tenant_id = $1 AND global_position = ANY($2)`, tenant, accepted); n != len(accepted) {
		t.Errorf("%d commands answered 202, %d of their events in the log (an accepted command lost)", len(accepted), n)
	}
	if n := tr.unanswered.Load(); n != 0 {
		t.Errorf("%d commands still unanswered after 30 s of retries", n)
	}
	distinct := len(slices.Compact(slices.Sorted(slices.Values(accepted))))
	if n := count(t, conn, `SELECT count(*) FROM events WHERE tenant_id = $1 AND event_type IN ('vm_create_requested', 'vm_action_requested')`, tenant); n != distinct {
		t.Errorf("%d commands stored, %d distinct ones answered 202 (a retry stored twice, or a command stored unanswered)", n, distinct)
	}
	if pending, repeated := requestOutcomes(t, conn, tenant, 0); pending != 0 || repeated != 0 {
		t.Errorf("%d accepted commands without a result, %d with more than one", pending, repeated)
	}
	// The agents reconcile and record drift on their own: stop them, so
	// that the log stops growing before it is compared with the stream,
	// the guests, the event streams and a rebuild.
	for _, ag := range agents {
		ag.Stop()
	}
	quiesce(t, conn)
	logEvents := streamHoldsLog(t, conn, a.JetStream(t))
	provisioned := count(t, conn, `SELECT count(*) FROM events WHERE tenant_id = $1 AND event_type = 'vm_provisioned'`, tenant)
	guests := guestsByVM(px.Sim)
	for vm, n := range guests {
		if n > 1 {
			t.Errorf("VM %s has %d guests on Proxmox", vm, n)
		}
	}
	if len(guests) != provisioned {
		t.Errorf("%d guests on Proxmox, %d VMs provisioned", len(guests), provisioned)
	}
	want := tenantPositions(t, conn, tenant)
	for i, f := range followers {
		stacktest.Eventually(t, 30*time.Second, "the resumed stream to reach the log's end", func() bool { return f.last() == want[len(want)-1] })
		if got := f.received(); !slices.Equal(got, want) {
			t.Errorf("event stream %d: %d events received, the tenant has %d (a gap or a duplicate across the resumption)", i, len(got), len(want))
		}
	}
	modelsEqualRebuild(t, a)
	t.Logf("%d commands accepted, %d refused during faults, %d events, %d guests", tr.accepted.Load(), tr.refused.Load(), logEvents, len(guests))
}

func waitAccepted(t *testing.T, tr *trickle, n int64) {
	t.Helper()
	stacktest.Eventually(t, 60*time.Second, "commands to be accepted", func() bool { return tr.accepted.Load() >= n })
}

func count(t *testing.T, conn *pgx.Conn, query string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
