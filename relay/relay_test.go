package relay_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accountdb/accountdb/relay"
	"github.com/prometheus/client_golang/prometheus"
)

func TestRelayPublishesInLogOrder(t *testing.T) {
	ctx := context.Background()
	env := newRelayEnv(t)
	_, js := env.connect()
	reg := prometheus.NewRegistry()
	r, _ := env.startRelay(js, relay.Options{BatchSize: 64, Registerer: reg})

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
	_, stop1 := env.startRelay(js1, relay.Options{BatchSize: 16})

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
	r2, _ := env.startRelay(js2, relay.Options{BatchSize: 16, Registerer: reg})
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
	r, _ := env.startRelay(js, relay.Options{BatchSize: 50})

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
	opts := relay.Options{BatchSize: 32, LockRetryInterval: 100 * time.Millisecond}
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

func TestRelayStepsDownWhenItsLockSessionDies(t *testing.T) {
	ctx := context.Background()
	env := newRelayEnv(t)
	_, js := env.connect()
	r, _ := env.startRelay(js, relay.Options{BatchSize: 16, LockRetryInterval: 50 * time.Millisecond})

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

// PublisherActive sees another process's relay by its lock: what `serve`
// checks before it runs with a signing key of its own.
func TestPublisherActiveSeesAnotherRelay(t *testing.T) {
	ctx := context.Background()
	env := newRelayEnv(t)
	if held, err := relay.PublisherActive(ctx, env.db.App); err != nil || held {
		t.Fatalf("before any relay: held %v err %v", held, err)
	}
	_, js := env.connect()
	r, stop := env.startRelay(js, relay.Options{})
	waitFor(t, 10*time.Second, "the relay to lead", func() bool { return r.Status().Active })
	if held, err := relay.PublisherActive(ctx, env.db.App); err != nil || !held {
		t.Fatalf("with a relay running: held %v err %v", held, err)
	}
	stop()
	if held, err := relay.PublisherActive(ctx, env.db.App); err != nil || held {
		t.Fatalf("after the relay stopped: held %v err %v", held, err)
	}
}
