package vm_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/api/feed"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// sseEvent is one block of a text/event-stream: an event or a comment.
type sseEvent struct {
	ID, Event, Data, Comment string
}

// sseStream reads an event stream in the background.
type sseStream struct {
	resp   *http.Response
	blocks chan sseEvent
	done   chan struct{} // closed when the stream ends
	err    error         // why it ended, once done is closed
}

func readSSE(r io.Reader, s *sseStream) {
	defer close(s.done)
	defer close(s.blocks)
	br := bufio.NewReader(r)
	var b sseEvent
	seen := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			s.err = err
			return // a block cut short is never emitted
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if seen {
				s.blocks <- b
			}
			b, seen = sseEvent{}, false
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			b.Comment, seen = value, true
		case "id":
			b.ID, seen = value, true
		case "event":
			b.Event, seen = value, true
		case "data":
			b.Data, seen = value, true
		}
	}
}

// subscribe opens GET /v1/events on base and waits for the answer's headers:
// the consumer exists by then, so every event appended afterwards arrives.
func subscribe(t *testing.T, base, token, query, lastID string) *sseStream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/v1/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET /v1/events%s: %d %s", query, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("headers %v", resp.Header)
	}
	s := &sseStream{resp: resp, blocks: make(chan sseEvent, 1024), done: make(chan struct{})}
	go readSSE(resp.Body, s)
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() { s.resp.Body.Close() }

// next is the next event (comments skipped); it fails the test after timeout.
func (s *sseStream) next(t *testing.T, timeout time.Duration) sseEvent {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case b, ok := <-s.blocks:
			if !ok {
				t.Fatalf("the event stream ended: %v", s.err)
			}
			if b.Event != "" || b.Data != "" {
				return b
			}
		case <-deadline:
			t.Fatalf("no event within %s", timeout)
		}
	}
}

// sseData is the data of an event: the event as GET /v1/vms/{id}/history answers it.
type sseData struct {
	Position      int64           `json:"position"`
	EventID       uuid.UUID       `json:"event_id"`
	StreamID      string          `json:"stream_id"`
	StreamVersion int64           `json:"stream_version"`
	Type          string          `json:"type"`
	TenantID      uuid.UUID       `json:"tenant_id"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Data          json.RawMessage `json:"data"`
}

func (b sseEvent) decode(t *testing.T) sseData {
	t.Helper()
	var d sseData
	if err := json.Unmarshal([]byte(b.Data), &d); err != nil {
		t.Fatalf("data %q: %v", b.Data, err)
	}
	if strconv.FormatInt(d.Position, 10) != b.ID || d.Type != b.Event {
		t.Fatalf("id %q event %q do not match the data %s", b.ID, b.Event, b.Data)
	}
	return d
}

// probe appends one event of type typ on a fresh "probe" stream of tenant,
// straight through the event store (the projectors ignore the stream type).
func probe(t *testing.T, s *stacktest.Stack, tenant uuid.UUID, typ string, data any) int64 {
	t.Helper()
	res, err := s.Store.Append(context.Background(), eventstore.Append{
		Stream: eventlog.StreamID{Type: "probe", ID: uuid.New()}, TenantID: tenant, Expected: eventstore.NoStream(),
		Events: []eventstore.NewEvent{{Type: typ, Data: data}}})
	if err != nil {
		t.Fatal(err)
	}
	return res.LastPosition
}

const sseWait = 15 * time.Second

// TestEventsLive subscribes as a tenant administrator and checks what the
// feed delivers: the tenant's events, live, in order, with id, event and
// data; never another tenant's; only the types asked for.
func TestEventsLive(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	tenA, tenB := s.Tenant(t, "acme"), s.Tenant(t, "globex")
	tokA := s.Login(t, s.User(t, tenA, auth.RoleTenantAdmin)).AccessToken
	tokB := s.Login(t, s.User(t, tenB, auth.RoleTenantAdmin)).AccessToken

	all := subscribe(t, s.URL, tokA, "", "")
	filtered := subscribe(t, s.URL, tokA, "?type=probe_b&type=probe_c", "")
	other := subscribe(t, s.URL, tokB, "?type=probe_a", "")

	var want []int64
	var wantFiltered []int64
	for i := range 12 {
		typ := []string{"probe_a", "probe_b", "probe_c"}[i%3]
		pos := probe(t, s, tenA, typ, map[string]int{"i": i})
		want = append(want, pos)
		if typ != "probe_a" {
			wantFiltered = append(wantFiltered, pos)
		}
		probe(t, s, tenB, "probe_a", map[string]int{"i": i}) // interleaved: never for A
	}
	// The feed starts with the next event the relay publishes, so A's own
	// earlier events (its creation, the login) may come first if the relay
	// was behind; nothing of B's ever does.
	nextProbe := func() (sseEvent, sseData) {
		for {
			b := all.next(t, sseWait)
			d := b.decode(t)
			if d.TenantID != tenA {
				t.Fatalf("tenant A's subscriber got %+v", d)
			}
			if strings.HasPrefix(d.Type, "probe_") {
				return b, d
			}
		}
	}
	for i, pos := range want {
		b, d := nextProbe()
		if d.Position != pos || d.TenantID != tenA || !strings.HasPrefix(d.StreamID, "probe-") || d.StreamVersion != 1 {
			t.Fatalf("event %d: got %+v, want position %d of tenant %s", i, d, pos, tenA)
		}
		if string(d.Data) != fmt.Sprintf(`{"i":%d}`, i) || d.RecordedAt.IsZero() || d.EventID == uuid.Nil {
			t.Fatalf("event %d: data %s", i, b.Data)
		}
	}
	for i, pos := range wantFiltered {
		if d := filtered.next(t, sseWait).decode(t); d.Position != pos || (d.Type != "probe_b" && d.Type != "probe_c") {
			t.Fatalf("filtered event %d: %+v, want %d", i, d, pos)
		}
	}
	// B's own subscriber sees B's 12 events; A's were appended in between.
	for i := range 12 {
		if d := other.next(t, sseWait).decode(t); d.TenantID != tenB || string(d.Data) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("tenant B event %d: %+v", i, d)
		}
	}
	// A sentinel after everything: A's subscriber got nothing of B's before it.
	last := probe(t, s, tenA, "probe_end", nil)
	if _, d := nextProbe(); d.Position != last {
		t.Fatalf("after A's events: %+v, want the sentinel %d (B's events must never arrive)", d, last)
	}

	// Malformed filters are refused before anything is streamed.
	for _, q := range []string{"?type=VM_started", "?type=a.b", "?type=" + strings.Repeat("a", 41), "?type=a*"} {
		if r := s.Do(t, tokA, http.MethodGet, "/v1/events"+q, nil, nil); r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, r.StatusCode, r.Body)
		}
	}
	if r := s.Do(t, "", http.MethodGet, "/v1/events", nil, nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous: %d", r.StatusCode)
	}
}

// TestEventsResume disconnects a subscriber midway and resumes with
// Last-Event-ID: exactly the events after it arrive, including those
// appended while it was away.
func TestEventsResume(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	tenA, tenB := s.Tenant(t, "acme"), s.Tenant(t, "globex")
	tokA := s.Login(t, s.User(t, tenA, auth.RoleTenantAdmin)).AccessToken

	first := subscribe(t, s.URL, tokA, "?type=probe_x", "")
	var want []int64
	for i := range 10 {
		want = append(want, probe(t, s, tenA, "probe_x", map[string]int{"i": i}))
	}
	var lastID string
	for i := range 4 {
		d := first.next(t, sseWait).decode(t)
		if d.Position != want[i] {
			t.Fatalf("event %d: %d, want %d", i, d.Position, want[i])
		}
		lastID = strconv.FormatInt(d.Position, 10)
	}
	first.close()
	// Appended while disconnected, some interleaved with another tenant's
	// events and with events of other types.
	for i := 10; i < 16; i++ {
		want = append(want, probe(t, s, tenA, "probe_x", map[string]int{"i": i}))
		probe(t, s, tenA, "probe_y", nil)
		probe(t, s, tenB, "probe_x", nil)
	}

	again := subscribe(t, s.URL, tokA, "?type=probe_x", lastID)
	for i := 4; i < len(want); i++ {
		if d := again.next(t, sseWait).decode(t); d.Position != want[i] {
			t.Fatalf("after resuming, event %d: %d, want %d (no repeat, no loss)", i, d.Position, want[i])
		}
	}
	// Still live after the replay.
	live := probe(t, s, tenA, "probe_x", nil)
	if d := again.next(t, sseWait).decode(t); d.Position != live {
		t.Fatalf("live after resume: %d, want %d", d.Position, live)
	}

	// From the beginning: the same events, in the same order.
	fromStart := subscribe(t, s.URL, tokA, "?type=probe_x", "0")
	for i, pos := range append(want, live) {
		if d := fromStart.next(t, sseWait).decode(t); d.Position != pos {
			t.Fatalf("from 0, event %d: %d, want %d", i, d.Position, pos)
		}
	}

	// Another tenant's event and one that does not exist read alike.
	foreign := probe(t, s, tenB, "probe_x", nil)
	var bodies []string
	for _, id := range []string{strconv.FormatInt(foreign, 10), "999999999", "abc", "-1"} {
		r := s.Do(t, tokA, http.MethodGet, "/v1/events", nil, nil, "Last-Event-ID", id)
		if r.StatusCode != http.StatusBadRequest {
			t.Fatalf("Last-Event-ID %s: %d %s", id, r.StatusCode, r.Body)
		}
		p := r.Problem(t)
		bodies = append(bodies, fmt.Sprint(p["code"], p["detail"]))
	}
	if bodies[0] != bodies[1] {
		t.Fatalf("another tenant's event answers %q, an unknown one %q", bodies[0], bodies[1])
	}
}

// TestEventsVMReadSeesVMEventsOnly: without audit:read the feed is the
// tenant's VM events only.
func TestEventsVMReadSeesVMEventsOnly(t *testing.T) {
	e := newEnv(t, stacktest.Options{}, roomyQuota)
	viewer := e.s.Login(t, e.s.User(t, e.tenID, auth.RoleViewer)).AccessToken
	sub := subscribe(t, e.s.URL, viewer, "", "")
	probe(t, e.s, e.tenID, "probe_x", nil) // not a VM event: never sent to a viewer
	a := e.create(t, "web-1")
	d := sub.next(t, sseWait).decode(t)
	if d.Type != "vm_create_requested" || d.StreamID != "vm-"+a.ID || d.Position != a.Position {
		t.Fatalf("viewer got %+v, want the VM's create request at %d", d, a.Position)
	}
}

// tunedServer serves the stack's API a second time with other event feed
// settings (heartbeat, buffer), logging to log.
func tunedServer(t *testing.T, s *stacktest.Stack, o feed.Options, log *slog.Logger) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	h := api.NewHandler(api.Deps{Logger: log, Gatherer: reg, V1: &api.V1{Commands: s.Sys.Commands, Pool: s.Sys.Pool,
		Store: s.Store, Verifier: &auth.Verifier{Keys: s.Keys}, JS: s.JetStream(t), Events: o, Metrics: reg}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// scrape is base's /metrics.
func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEventsHeartbeat: ": ping" comments arrive at the configured interval,
// and the session is checked at each.
func TestEventsHeartbeat(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	ten := s.Tenant(t, "acme")
	tok := s.Login(t, s.User(t, ten, auth.RoleViewer)).AccessToken
	url := tunedServer(t, s, feed.Options{Heartbeat: 20 * time.Millisecond}, nil)
	sub := subscribe(t, url, tok, "", "")
	deadline := time.After(sseWait)
	for pings := 0; pings < 2; {
		select {
		case b, ok := <-sub.blocks:
			if !ok {
				t.Fatalf("stream ended: %v", sub.err)
			}
			if b.Comment == "ping" {
				pings++
			}
		case <-deadline:
			t.Fatal("no heartbeat")
		}
	}
	// The session ends: the stream ends at the next heartbeat.
	if r := s.Do(t, tok, http.MethodPost, "/v1/auth/logout", nil, nil); r.StatusCode/100 != 2 {
		t.Fatalf("logout: %d %s", r.StatusCode, r.Body)
	}
	deadline = time.After(sseWait)
	for {
		select {
		case _, ok := <-sub.blocks: // pings until the end
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the stream outlived its session")
		}
	}
}

// dropLog signals when the feed logs that it dropped a slow client.
type dropLog struct {
	slog.Handler
	once    sync.Once
	dropped chan struct{}
}

func (h *dropLog) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "slow client dropped") {
		h.once.Do(func() { close(h.dropped) })
	}
	return nil
}
func (h *dropLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *dropLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *dropLog) WithGroup(string) slog.Handler            { return h }

// TestEventsSlowClientDropped: a client that reads nothing is cut off once
// the socket and a small buffer are full, not buffered without bound; it
// then resumes with Last-Event-ID and loses nothing. A client of the same
// tenant that keeps reading (served by the same tenant consumer) gets
// everything meanwhile: a slow client slows no one else.
func TestEventsSlowClientDropped(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	ten := s.Tenant(t, "acme")
	tok := s.Login(t, s.User(t, ten, auth.RoleTenantAdmin)).AccessToken
	logs := &dropLog{Handler: slog.DiscardHandler, dropped: make(chan struct{})}
	base := tunedServer(t, s, feed.Options{Buffer: 32}, slog.New(logs))
	fast := subscribe(t, base, tok, "?type=probe_big", "")

	// A raw connection with a small receive buffer, so the server's writes
	// back up quickly once it stops reading.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/events?type=probe_big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n", tok)
	raw := bufio.NewReader(conn)
	status, err := raw.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		t.Fatalf("status line %q: %v", status, err)
	}
	chunked := false
	for { // the headers
		line, err := raw.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.EqualFold(strings.TrimSpace(line), "Transfer-Encoding: chunked") {
			chunked = true
		}
		if line == "\r\n" {
			break
		}
	}
	if !chunked {
		t.Fatal("the stream is not chunked")
	}
	br := bufio.NewReader(httputil.NewChunkedReader(raw))
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "retry:") {
		t.Fatalf("first line %q: %v", line, err)
	}

	// A first, small event the client does read: where it will resume from.
	marker := probe(t, s, ten, "probe_big", nil)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "id: "+strconv.FormatInt(marker, 10)+"\n" {
			break
		}
	}
	for { // the rest of its block
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\n" {
			break
		}
	}

	// Then about 9 MB it does not read: far more than the socket buffers
	// (at most 4 MB here) and its queue hold.
	const n = 150
	pad := strings.Repeat("x", 60<<10)
	var want []int64
	for i := range n {
		want = append(want, probe(t, s, ten, "probe_big", map[string]any{"i": i, "pad": pad}))
	}
	// The reading client of the same tenant gets every event, in order. Read
	// them first: once the hub has handed the reader every event it has also
	// offered each to the slow client, so the drop is due by then however
	// slowly a loaded machine relayed the events (a fixed wait from the last
	// append was flaky under load).
	if d := fast.next(t, sseWait).decode(t); d.Position != marker {
		t.Fatalf("the reading client's first event: %d, want the marker %d", d.Position, marker)
	}
	for i := range n {
		if d := fast.next(t, sseWait).decode(t); d.Position != want[i] {
			t.Fatalf("the reading client's event %d: %d, want %d", i, d.Position, want[i])
		}
	}
	select {
	case <-logs.dropped:
	case <-time.After(60 * time.Second):
		t.Fatal("the slow client was not dropped")
	}
	// Now read what was sent: the server has closed the stream.
	stream := &sseStream{blocks: make(chan sseEvent, n+10), done: make(chan struct{})}
	_ = conn.SetReadDeadline(time.Now().Add(sseWait))
	readSSE(br, stream) // a block cut short by the drop is not emitted
	if ne, ok := stream.err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server did not close the stream of the dropped client")
	}
	var got []int64
	for b := range stream.blocks {
		if b.Event == "probe_big" {
			var d sseData
			if err := json.Unmarshal([]byte(b.Data), &d); err != nil {
				continue // the last block may be cut by the drop
			}
			got = append(got, d.Position)
		}
	}
	if len(got) >= n {
		t.Fatalf("the dropped client got all %d events", n)
	}
	for i, pos := range got {
		if pos != want[i] {
			t.Fatalf("event %d: %d, want %d", i, pos, want[i])
		}
	}

	// The drop is counted for operators, by reason.
	if m := scrape(t, base); !strings.Contains(m, `accountdb_event_feed_dropped_total{reason="slow_client"} 1`) {
		t.Errorf("/metrics does not count the slow client's drop:\n%s", m)
	}

	// It resumes where it was cut off and gets the rest exactly.
	last := marker
	if len(got) > 0 {
		last = got[len(got)-1]
	}
	again := subscribe(t, s.URL, tok, "?type=probe_big", strconv.FormatInt(last, 10))
	for i := len(got); i < n; i++ {
		if d := again.next(t, sseWait).decode(t); d.Position != want[i] {
			t.Fatalf("resumed event %d: %d, want %d", i, d.Position, want[i])
		}
	}
}
