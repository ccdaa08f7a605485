package vm_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/google/uuid"
)

// The live tail of GET /v1/events is one consumer per tenant per process
// (a hub); a resumed connection reads the past through its own consumer
// and hands over to the hub. These tests hold that seam to the contract:
// no loss, no duplicate, log order, whatever is being appended meanwhile.

// logOrder is the positions of tenant's events of the given types, in log
// order, read back from PostgreSQL (as the superuser: the test's own view).
func logOrder(t *testing.T, s *stacktest.Stack, tenant uuid.UUID, types ...string) []int64 {
	t.Helper()
	conn := s.DB.AdminConn(t)
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT global_position FROM events
		WHERE tenant_id = $1 AND event_type = ANY($2) ORDER BY transaction_id, global_position`, tenant, types)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// until collects a subscriber's event positions up to and including end.
func (s *sseStream) until(t *testing.T, end int64) []int64 {
	t.Helper()
	var got []int64
	for {
		d := s.next(t, sseWait).decode(t)
		got = append(got, d.Position)
		if d.Position == end {
			return got
		}
	}
}

// TestEventsHandOverWhileAppending opens subscribers, resumed and live,
// while two writers keep appending, on a tenant whose hub exists already
// and on one whose first subscriber is a resumed one. Each must receive
// exactly the events after its resume point, in log order.
func TestEventsHandOverWhileAppending(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	tenA, tenB := s.Tenant(t, "acme"), s.Tenant(t, "globex")
	tokA := s.Login(t, s.User(t, tenA, auth.RoleTenantAdmin)).AccessToken
	tokB := s.Login(t, s.User(t, tenB, auth.RoleTenantAdmin)).AccessToken
	const q = "?type=probe_w&type=probe_end"

	// Some history first, to resume into.
	var history []int64
	for i := range 40 {
		history = append(history, probe(t, s, tenA, "probe_w", map[string]int{"i": i}))
		probe(t, s, tenB, "probe_w", map[string]int{"i": i})
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var rounds atomic.Int64 // appends per tenant, both writers together
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				for _, ten := range []uuid.UUID{tenA, tenB} {
					if _, err := s.Store.Append(context.Background(), eventstore.Append{
						Stream: eventlog.StreamID{Type: "probe", ID: uuid.New()}, TenantID: ten, Expected: eventstore.NoStream(),
						Events: []eventstore.NewEvent{{Type: "probe_w", Data: map[string]int{"i": i}}}}); err != nil {
						t.Error(err)
						return
					}
				}
				rounds.Add(1)
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}

	type sub struct {
		name  string
		ten   uuid.UUID
		after int64 // -1: live, first event unknown
		s     *sseStream
	}
	var subs []sub
	// Tenant B's first subscriber resumes: it starts B's hub itself.
	subs = append(subs, sub{"B from 0", tenB, 0, subscribe(t, s.URL, tokB, q, "0")})
	subs = append(subs, sub{"A live", tenA, -1, subscribe(t, s.URL, tokA, q, "")})
	time.Sleep(100 * time.Millisecond)
	// A's hub is running: these join it after catching up.
	subs = append(subs, sub{"A from 0", tenA, 0, subscribe(t, s.URL, tokA, q, "0")})
	subs = append(subs, sub{"A from the middle", tenA, history[20], subscribe(t, s.URL, tokA, q, strconv.FormatInt(history[20], 10))})
	time.Sleep(150 * time.Millisecond)
	subs = append(subs, sub{"B live", tenB, -1, subscribe(t, s.URL, tokB, q, "")})
	subs = append(subs, sub{"A from the last", tenA, history[39], subscribe(t, s.URL, tokA, q, strconv.FormatInt(history[39], 10))})
	time.Sleep(150 * time.Millisecond)
	// The writers go on until the subscriptions above have seen enough
	// appends, counted rather than timed: a loaded machine appends fewer
	// events in the same wall time (the test once ended with too few).
	for deadline := time.Now().Add(time.Minute); rounds.Load() < 80; {
		if time.Now().After(deadline) {
			t.Fatalf("the writers appended only %d events per tenant in a minute", rounds.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	end := map[uuid.UUID]int64{tenA: probe(t, s, tenA, "probe_end", nil), tenB: probe(t, s, tenB, "probe_end", nil)}
	want := map[uuid.UUID][]int64{tenA: logOrder(t, s, tenA, "probe_w", "probe_end"), tenB: logOrder(t, s, tenB, "probe_w", "probe_end")}
	if n := len(want[tenA]); n < 100 {
		t.Fatalf("only %d events appended for A: the writers did not overlap the subscriptions", n)
	}

	for _, c := range subs {
		got := c.s.until(t, end[c.ten])
		w := want[c.ten]
		start := 0
		switch {
		case c.after > 0:
			for start < len(w) && w[start] != c.after {
				start++
			}
			start++ // the event after Last-Event-ID
		case c.after < 0: // live: from wherever it joined, then everything
			for start < len(w) && w[start] != got[0] {
				start++
			}
		}
		if start >= len(w) {
			t.Fatalf("%s: first event %d is not one of the tenant's", c.name, got[0])
		}
		if !equalPositions(got, w[start:]) {
			t.Fatalf("%s: got %d events %v…, want the %d after index %d (no loss, no repeat, log order)",
				c.name, len(got), head(got), len(w)-start, start)
		}
	}
}

func equalPositions(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func head(p []int64) []int64 { return p[:min(len(p), 8)] }

// TestEventsOneConsumerPerTenant: however many subscribers a tenant has on
// one API process, the NATS server holds one consumer for them, and none
// once they have all gone.
func TestEventsOneConsumerPerTenant(t *testing.T) {
	e := newEnv(t, stacktest.Options{}, roomyQuota)
	s, ten := e.s, e.tenID
	tok := s.Login(t, s.User(t, ten, auth.RoleTenantAdmin)).AccessToken
	viewer := s.Login(t, s.User(t, ten, auth.RoleViewer)).AccessToken
	ctx := context.Background()
	stream, err := s.JetStream(t).Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	consumers := func() int {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Consumers
	}
	waitFor := func(want int, what string) {
		deadline := time.Now().Add(sseWait)
		for consumers() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d consumers on %s, want %d", what, consumers(), bus.StreamName, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	base := consumers() // the projectors' durable consumers
	// The feed's own gauges on /metrics say the same.
	gauge := func(name string) string {
		r := s.Do(t, "", http.MethodGet, "/metrics", nil, nil)
		for _, line := range strings.Split(string(r.Body), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return v
			}
		}
		t.Fatalf("/metrics has no %s", name)
		return ""
	}

	subs := []*sseStream{
		subscribe(t, s.URL, tok, "?type=probe_a&type=probe_b", ""),
		subscribe(t, s.URL, tok, "?type=probe_a", ""),
		subscribe(t, s.URL, viewer, "", ""),
	}
	waitFor(base+1, "three subscribers of one tenant")
	if c, n := gauge("accountdb_event_feed_tenant_consumers"), gauge("accountdb_event_feed_subscribers"); c != "1" || n != "3" {
		t.Fatalf("metrics: %s tenant consumers, %s subscribers; want 1 and 3", c, n)
	}
	// All three are served by it, each with what it asked for and may see.
	pos := probe(t, s, ten, "probe_a", nil)
	for i, sub := range subs[:2] {
		if d := sub.next(t, sseWait).decode(t); d.Position != pos {
			t.Fatalf("subscriber %d: %+v, want %d", i, d, pos)
		}
	}
	vm := e.create(t, "web-1")
	if d := subs[2].next(t, sseWait).decode(t); d.Position != vm.Position {
		t.Fatalf("the viewer got %+v, want the VM's create request at %d (and never the probe)", d, vm.Position)
	}
	for _, sub := range subs {
		sub.close()
	}
	waitFor(base, "every subscriber gone")
	stacktest.Eventually(t, sseWait, "the feed's gauges back to 0", func() bool {
		return gauge("accountdb_event_feed_tenant_consumers") == "0" && gauge("accountdb_event_feed_subscribers") == "0"
	})
	// And a new subscriber starts it again.
	again := subscribe(t, s.URL, tok, "?type=probe_a", "")
	pos = probe(t, s, ten, "probe_a", nil)
	if d := again.next(t, sseWait).decode(t); d.Position != pos {
		t.Fatalf("after the hub stopped: %+v, want %d", d, pos)
	}
}

// follow reads GET /v1/events as a client that implements the feed's
// contract: when the stream ends it reconnects with the id of the last event
// it got (retrying while the server cannot serve it), until it has the
// event at end. It returns the positions received and how many streams it
// needed.
func follow(t *testing.T, base, token, query, lastID string, end <-chan int64) ([]int64, int) {
	t.Helper()
	var (
		got     []int64
		streams int
		want    int64 = -1
	)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		sub, err := trySubscribe(base, token, query, lastID)
		if err != nil {
			time.Sleep(100 * time.Millisecond) // NATS is away: the route cannot serve yet
			continue
		}
		streams++
	read:
		for {
			select {
			case want = <-end:
				end = nil
			case b, ok := <-sub.blocks:
				if !ok {
					break read // the server ended the stream: resume
				}
				if b.Event == "" {
					continue
				}
				d := b.decode(t)
				got = append(got, d.Position)
				lastID = b.ID
				if d.Position == want {
					sub.close()
					return got, streams
				}
			case <-time.After(time.Second):
				if want >= 0 && len(got) > 0 && got[len(got)-1] == want {
					sub.close()
					return got, streams
				}
			}
		}
		sub.close()
	}
	t.Fatalf("%s: did not reach the end event within 60s; got %d events", query, len(got))
	return nil, 0
}

// trySubscribe is subscribe without failing the test: an answer other than
// 200 is an error.
func trySubscribe(base, token, query, lastID string) (*sseStream, error) {
	req, err := http.NewRequest(http.MethodGet, base+"/v1/events"+query, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	s := &sseStream{resp: resp, blocks: make(chan sseEvent, 1024), done: make(chan struct{})}
	go readSSE(resp.Body, s)
	return s, nil
}

// TestEventsAcrossNATSRestart: the NATS server restarts under live and
// resumed subscribers while events keep being appended. A client that
// follows the contract (reconnect with Last-Event-ID when the stream ends)
// gets every event exactly once, in log order.
func TestEventsAcrossNATSRestart(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	ten := s.Tenant(t, "acme")
	tok := s.Login(t, s.User(t, ten, auth.RoleTenantAdmin)).AccessToken
	const q = "?type=probe_n&type=probe_end"
	start := probe(t, s, ten, "probe_n", nil)

	type result struct {
		got     []int64
		streams int
	}
	ends := []chan int64{make(chan int64, 1), make(chan int64, 1)}
	results := make([]result, 2)
	var wg sync.WaitGroup
	for i, lastID := range []string{strconv.FormatInt(start, 10), "0"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, n := follow(t, s.URL, tok, q, lastID, ends[i])
			results[i] = result{got, n}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	for i := range 20 {
		probe(t, s, ten, "probe_n", map[string]int{"i": i})
	}
	s.NATS.Restart()
	for i := 20; i < 40; i++ {
		probe(t, s, ten, "probe_n", map[string]int{"i": i})
		time.Sleep(5 * time.Millisecond)
	}
	end := probe(t, s, ten, "probe_end", nil)
	for _, c := range ends {
		c <- end
	}
	wg.Wait()

	all := logOrder(t, s, ten, "probe_n", "probe_end")
	if all[0] != start {
		t.Fatalf("log starts at %d, want the first probe %d", all[0], start)
	}
	for i, want := range [][]int64{all[1:], all} {
		if !equalPositions(results[i].got, want) {
			t.Fatalf("subscriber %d (%d streams): got %d events %v…, want %d (every event once, in log order)",
				i, results[i].streams, len(results[i].got), head(results[i].got), len(want))
		}
		t.Logf("subscriber %d: %d events over %d stream(s)", i, len(results[i].got), results[i].streams)
	}
}
