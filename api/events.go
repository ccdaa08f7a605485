package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// GET /v1/events: the caller's tenant's events, live, as Server-Sent Events
// (docs/EVENTS.md, "Live subscribers"). The live tail comes from the
// tenant's hub (events_hub.go): one ordered consumer per tenant per API
// process, filtered on that tenant's subjects only, so another tenant's
// events never reach this process's buffers for it. A resumed connection
// first reads the past through its own ordered consumer (same filter).
//
//   - Permission: vm:read lets a subscriber see the VM events of its tenant
//     (subjects accountdb.events.<tenant>.vm.*); with audit:read too it sees
//     every event of its tenant (users, sessions, denials: the audit log).
//   - ?type= (repeatable) narrows to event types; each must be a lower snake
//     case identifier (the event type pattern), at most maxEventTypes.
//   - Last-Event-ID: P resumes after the event at global position P, which
//     must be an event of the caller's tenant: the stream then starts at the
//     first message after P in log order, and every message at or before P is
//     skipped, so a reconnect neither repeats nor loses an event. "0" starts
//     at the beginning of the log. Any other value (malformed, unknown, or
//     another tenant's event: the same answer) is a 400, never a silent
//     restart from now. Without the header the feed starts now.
//   - A comment (": ping") every Heartbeat keeps proxies from closing an idle
//     stream; at each one the session is checked again, and a session that
//     ended or lost the permission the stream was opened with ends it.
//   - Backpressure: the hub hands each event to a channel of Buffer events
//     per connection and never waits. A client that falls so far behind that
//     it fills (the socket buffers are full first) is dropped, and so is one
//     that does not take a write within WriteTimeout: the server closes the
//     stream and the client resumes with Last-Event-ID. Nothing grows
//     without bound, and no client slows another.

// EventsOptions tunes GET /v1/events; zero values take the defaults.
type EventsOptions struct {
	Heartbeat    time.Duration // between ": ping" comments (default 15 s)
	Buffer       int           // events queued for a slow client before it is dropped (default 256)
	WriteTimeout time.Duration // one write's deadline before the client is dropped (default 10 s)
}

const (
	defaultEventsHeartbeat    = 15 * time.Second
	defaultEventsBuffer       = 256
	defaultEventsWriteTimeout = 10 * time.Second
	// maxEventTypes bounds ?type=, and with it the consumer's filter subjects.
	maxEventTypes = 20
	// eventsRetryMillis is the reconnection delay suggested to EventSource.
	eventsRetryMillis = 1000
)

var eventTypeParam = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// eventFeed is the shared state of the live feed.
type eventFeed struct {
	js   jetstream.JetStream
	opts EventsOptions

	mu       sync.Mutex
	shutdown map[*http.Server]chan struct{}
	frames   *frameCache

	hubsMu sync.Mutex
	hubs   map[string]*tenantHub // by tenant id

	metrics *feedMetrics
}

func newEventFeed(js jetstream.JetStream, o EventsOptions, reg prometheus.Registerer) *eventFeed {
	if o.Heartbeat <= 0 {
		o.Heartbeat = defaultEventsHeartbeat
	}
	if o.Buffer <= 0 {
		o.Buffer = defaultEventsBuffer
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = defaultEventsWriteTimeout
	}
	return &eventFeed{js: js, opts: o, shutdown: map[*http.Server]chan struct{}{},
		frames: &frameCache{m: map[int64][]byte{}, max: frameCacheBytes},
		hubs:   map[string]*tenantHub{}, metrics: newFeedMetrics(reg)}
}

// shuttingDown is closed when the request's server begins a graceful
// shutdown. http.Server.Shutdown waits for active requests but does not
// cancel them, so streams must end on their own for it to finish.
func (f *eventFeed) shuttingDown(r *http.Request) <-chan struct{} {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, ok := f.shutdown[srv]
	if !ok {
		ch = make(chan struct{})
		f.shutdown[srv] = ch
		srv.RegisterOnShutdown(func() { close(ch) })
	}
	return ch
}

// eventMatcher is what a subscriber asked for and may see, by the stream
// and event type of a message of its tenant: its VM streams only without
// audit:read, and only the ?type= event types when any are given.
func eventMatcher(p *Principal, types []string) func(streamType, eventType string) bool {
	vmOnly := !p.Can(auth.PermAuditRead)
	return func(streamType, eventType string) bool {
		if vmOnly && streamType != "vm" {
			return false
		}
		return len(types) == 0 || slices.Contains(types, eventType)
	}
}

func parseEventTypes(r *http.Request) ([]string, error) {
	types := r.URL.Query()["type"]
	var fe FieldErrors
	if len(types) > maxEventTypes {
		fe.Add("type", "at most "+strconv.Itoa(maxEventTypes)+" types")
	}
	for _, t := range types {
		if !eventTypeParam.MatchString(t) {
			fe.Add("type", "an event type is a lower snake case identifier (^[a-z][a-z0-9_]{0,39}$)")
		}
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	slices.Sort(types)
	return slices.Compact(types), nil
}

var errBadLastEventID = BadRequest("Last-Event-ID must be the id of an event of your tenant received from this feed, or 0 for the beginning of the log", nil)

// resumePoint is where a Last-Event-ID sends a connection: every event
// after `after` in log order, the first of them at stream sequence startSeq
// (or none yet when startSeq is past lastSeq, the stream's last sequence
// when it was looked up).
type resumePoint struct {
	after             eventstore.Position
	startSeq, lastSeq uint64
}

// eventsResume turns a Last-Event-ID header into a resume point.
func (id *identity) eventsResume(ctx context.Context, p *Principal, lastID string) (resumePoint, error) {
	gp, err := strconv.ParseInt(lastID, 10, 64)
	if err != nil || gp < 0 {
		return resumePoint{}, errBadLastEventID
	}
	var rp resumePoint
	if gp > 0 {
		// Row-level security scopes the look-up to the caller's tenant:
		// another tenant's event reads exactly like one that does not exist.
		var txid string
		err = tenantdb.ReadTx(ctx, id.pool, tenantdb.Tenant(p.TenantID), func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT transaction_id::text FROM events WHERE global_position = $1`, gp).Scan(&txid)
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return resumePoint{}, errBadLastEventID
		}
		if err != nil {
			return resumePoint{}, err
		}
		t, err := strconv.ParseUint(txid, 10, 64)
		if err != nil {
			return resumePoint{}, err
		}
		rp.after = eventstore.Position{TransactionID: t, GlobalPosition: gp}
	}
	rp.startSeq, rp.lastSeq, err = firstSeqAfter(ctx, id.events.js, tenantSubjects(p.TenantID.String()), rp.after)
	return rp, err
}

// firstSeqAfter is the sequence of the first message on subject whose log
// position is after pos (or the sequence after the last message), and the
// stream's last sequence: the stream is in log order, so a binary search
// over sequences finds it in O(log n) direct gets, without trusting any
// clock.
func firstSeqAfter(ctx context.Context, js jetstream.JetStream, subject string, pos eventstore.Position) (first, last uint64, err error) {
	stream, err := js.Stream(ctx, eventstore.StreamName)
	if err != nil {
		return 0, 0, err
	}
	st := stream.CachedInfo().State
	lo, hi := max(st.FirstSeq, 1), st.LastSeq+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		// The first message on subject at or after mid.
		m, err := stream.GetMsg(ctx, mid, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			hi = mid
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		at, _, err := eventstore.MessagePositions(m.Header)
		if err != nil {
			return 0, 0, err
		}
		if at.Less(pos) || at == pos {
			lo = m.Sequence + 1
		} else {
			hi = mid
		}
	}
	return lo, st.LastSeq, nil
}

// eventConn is one subscriber's connection: its writes, deadlines and drop.
type eventConn struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	r       *http.Request
	opts    EventsOptions
	metrics *feedMetrics

	mu        sync.Mutex // orders the writer's deadlines with the drop
	dropped   bool
	finished  bool // the handler returned: the connection may serve another request
	gone      chan struct{}
	unflushed bool // written since the last flush (the handler's goroutine only)
}

// Why the server ends a stream (the dropped metric's reason label).
const (
	dropSlowClient      = "slow_client"
	dropConsumerStopped = "consumer_stopped"
	dropUndecodable     = "undecodable_message"
)

// drop ends the stream from another goroutine: the handler sees gone
// closed, and a write stuck on a full socket is unblocked.
func (c *eventConn) drop(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped || c.finished {
		return
	}
	c.dropped = true
	close(c.gone)
	_ = c.rc.SetWriteDeadline(time.Now())
	c.metrics.dropped.WithLabelValues(reason).Inc()
	msg := "event feed: stream ended by the server"
	if reason == dropSlowClient {
		msg = "event feed: slow client dropped"
	}
	loggerFrom(c.r).Info(msg, "reason", reason, "request_id", RequestID(c.r.Context()), "buffer", c.opts.Buffer)
}

// write sends b, flushing when asked, within WriteTimeout.
func (c *eventConn) write(b []byte, flush bool) bool {
	c.mu.Lock()
	if c.dropped {
		c.mu.Unlock()
		return false
	}
	_ = c.rc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
	c.mu.Unlock()
	_, err := c.w.Write(b)
	c.unflushed = true
	if err == nil && flush {
		err = c.rc.Flush()
		c.unflushed = false
	}
	if err != nil {
		loggerFrom(c.r).Debug("event feed: write failed", "request_id", RequestID(c.r.Context()), "error", err)
		return false
	}
	return true
}

// flushWritten flushes what was written without a flush, if anything.
func (c *eventConn) flushWritten() bool {
	if !c.unflushed {
		return true
	}
	return c.write(nil, true)
}

// pastReader is a resumed connection's own ordered consumer of its tenant's
// events, read until the connection has joined its tenant's hub.
type pastReader struct {
	msgs <-chan jetstream.Msg
	done <-chan struct{} // closed when the consumer stops
	stop func()          // stops and deletes the consumer; idempotent
}

// readPast reads the tenant's events from stream sequence startSeq. The past
// waits for the client (the socket paces it) rather than dropping it: a long
// replay is not a slow client.
func (f *eventFeed) readPast(ctx context.Context, log *slog.Logger, tenant string, startSeq uint64) (*pastReader, error) {
	q := make(chan jetstream.Msg, f.opts.Buffer)
	pastCtx, pastCancel := context.WithCancel(ctx)
	cons, cc, err := f.consumeTenant(ctx, log, tenant, startSeq, min(f.opts.Buffer, 500), func(m jetstream.Msg) {
		select {
		case q <- m:
		case <-pastCtx.Done():
		}
	})
	if err != nil {
		pastCancel()
		return nil, err
	}
	f.metrics.catchUps.Inc()
	var once sync.Once
	return &pastReader{msgs: q, done: cc.Closed(), stop: func() {
		once.Do(func() {
			f.metrics.catchUps.Dec()
			pastCancel()
			stopOrdered(f.js, cons, cc)
		})
	}}, nil
}

// streamEvents serves GET /v1/events.
//
// Without Last-Event-ID the connection joins its tenant's hub and is live at
// once. With one it reads from its resume point through its own ordered
// consumer, and once that consumer is near the end of the stream it joins
// the hub: the hub hands it every event after sequence `from`, and the
// consumer goes on until it has delivered everything up to `from`. The two
// overlap rather than leave a gap; the overlap is skipped by log position.
func (id *identity) streamEvents(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	feed := id.events
	if feed.js == nil {
		WriteProblem(w, r, Unavailable())
		return
	}
	types, err := parseEventTypes(r)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	tenant := p.TenantID.String()
	log := loggerFrom(r)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()

	resuming := r.Header.Get("Last-Event-ID") != ""
	var rp resumePoint
	if resuming {
		if rp, err = id.eventsResume(ctx, p, r.Header.Get("Last-Event-ID")); err != nil {
			WriteError(w, r, err)
			return
		}
	}

	c := &eventConn{w: w, rc: http.NewResponseController(w), r: r, opts: feed.opts, metrics: feed.metrics, gone: make(chan struct{})}
	defer func() {
		c.mu.Lock()
		c.finished = true
		c.mu.Unlock()
	}()
	match := eventMatcher(p, types)
	sub := &subscriber{match: match, live: make(chan liveEvent, feed.opts.Buffer), drop: c.drop}
	var (
		live     <-chan liveEvent // read once caught up
		joined   bool
		from     uint64 // the hub hands sub every event after this sequence
		detach   = func() {}
		catchUp  <-chan jetstream.Msg
		stopPast = func() {}
		pastDone <-chan struct{}
	)
	defer func() { detach() }()
	join := func() error {
		var err error
		from, detach, err = feed.attach(ctx, log, tenant, sub)
		joined = err == nil
		return err
	}
	// Joining first when there is no past to read (or none yet): then only
	// the events that reach the hub between the look-up and the join, if
	// any, come through the connection's own consumer.
	if !resuming || rp.startSeq > rp.lastSeq {
		if err := join(); err != nil {
			WriteError(w, r, err)
			return
		}
	}
	if resuming && (!joined || from >= rp.startSeq) {
		past, err := feed.readPast(ctx, log, tenant, rp.startSeq)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		stopPast = past.stop
		defer stopPast()
		catchUp, pastDone = past.msgs, past.done
	}
	if catchUp == nil {
		live = sub.live
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	feed.metrics.subscribers.Inc()
	defer feed.metrics.subscribers.Dec()
	if !c.write([]byte("retry: "+strconv.Itoa(eventsRetryMillis)+"\n\n"), true) {
		return
	}

	heartbeat := time.NewTicker(feed.opts.Heartbeat)
	defer heartbeat.Stop()
	shutdown := feed.shuttingDown(r)
	after := rp.after
	for {
		select {
		case <-ctx.Done():
			return
		case <-shutdown:
			return
		case <-c.gone:
			return
		case <-pastDone:
			log.Warn("event feed consumer stopped", "request_id", RequestID(ctx))
			return
		case <-heartbeat.C:
			if !id.stillAllowed(ctx, p) {
				return
			}
			if !c.write([]byte(": ping\n\n"), true) {
				return
			}
		case m := <-catchUp:
			ev, err := decodeLive(m, tenant, feed.frames)
			if err != nil {
				log.Error("event feed: undecodable message", "request_id", RequestID(ctx), "error", err)
				return
			}
			if after.Less(ev.pos) && match(ev.streamType, ev.eventType) {
				after = ev.pos
				if !c.write(ev.frame, false) {
					return
				}
				feed.metrics.sent.Inc()
			}
			if !joined {
				meta, err := m.Metadata()
				if err == nil && meta.NumPending <= uint64(feed.opts.Buffer/4) {
					if err := join(); err != nil {
						log.Error("event feed: joining the tenant's live feed", "request_id", RequestID(ctx), "error", err)
						return
					}
				}
			}
			if joined && ev.seq >= from {
				// Everything up to the hub's start is delivered: live.
				stopPast()
				catchUp, pastDone, live = nil, nil, sub.live
			}
			// Flush when nothing else is waiting: one syscall per burst
			// (also after a message the client did not ask for).
			if len(catchUp) == 0 && !c.flushWritten() {
				return
			}
		case ev := <-live:
			if !after.Less(ev.pos) {
				continue // delivered already, by the connection's own consumer
			}
			after = ev.pos
			// Flush when nothing else is waiting: one syscall per burst.
			if !c.write(ev.frame, len(live) == 0) {
				return
			}
			feed.metrics.sent.Inc()
		}
	}
}

// stillAllowed re-reads the session at each heartbeat: a stream outlives its
// access token, but not its session, nor the permissions it was opened with.
func (id *identity) stillAllowed(ctx context.Context, p *Principal) bool {
	roles, active, err := id.commands.SessionRoles(ctx, p.TenantID, p.UserID, p.SessionID)
	if err != nil {
		return ctx.Err() == nil // a failed look-up does not end the stream
	}
	return active && auth.HasPermission(roles, auth.PermVMRead) &&
		auth.HasPermission(roles, auth.PermAuditRead) == p.Can(auth.PermAuditRead)
}

// frameCache keeps the encoded SSE frames of recent events, by global
// position: an event reaches every subscriber of its tenant, and its frame
// (id, type, JSON) is the same for all of them, so it is encoded once, not
// once per connection. An event never changes once recorded. FIFO, bounded
// in bytes.
type frameCache struct {
	mu    sync.Mutex
	m     map[int64][]byte
	order []int64
	bytes int
	max   int
}

const frameCacheBytes = 16 << 20

func (c *frameCache) get(pos int64) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[pos]
	return b, ok
}

func (c *frameCache) put(pos int64, frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[pos]; ok || len(frame) > c.max/4 {
		return
	}
	c.m[pos] = frame
	c.order = append(c.order, pos)
	c.bytes += len(frame)
	for c.bytes > c.max && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		c.bytes -= len(c.m[old])
		delete(c.m, old)
	}
}

// eventFrame is the SSE frame of e: id, event and data (one line of JSON).
func eventFrame(e eventstore.Event) ([]byte, error) {
	data, err := json.Marshal(toEventResponse(e)) // compact: one line
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 0, len(data)+len(e.Type)+48)
	buf = append(buf, "id: "...)
	buf = strconv.AppendInt(buf, e.Position.GlobalPosition, 10)
	buf = append(buf, "\nevent: "...)
	buf = append(buf, e.Type...)
	buf = append(buf, "\ndata: "...)
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	return buf, nil
}
