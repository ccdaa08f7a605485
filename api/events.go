package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
)

// GET /v1/events: the caller's tenant's events, live, as Server-Sent Events
// (docs/EVENTS.md, "Live subscribers"). Each connection reads the
// ACCOUNTDB_EVENTS stream through its own ordered consumer, filtered on the
// caller's tenant's subjects only, so another tenant's events never reach
// this process's buffers for it.
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
//   - Backpressure: between the consumer and the writer is a channel of
//     Buffer events. A client that falls so far behind that it fills (the
//     socket buffers are full first) is dropped, and so is one that does not
//     take a write within WriteTimeout: the server closes the stream and the
//     client resumes with Last-Event-ID. Nothing grows without bound.

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
}

func newEventFeed(js jetstream.JetStream, o EventsOptions) *eventFeed {
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
		frames: &frameCache{m: map[int64][]byte{}, max: frameCacheBytes}}
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

// eventFilter is what a subscriber asked for and may see.
type eventFilter struct {
	subjects []string
	after    eventstore.Position // skip every message at or before this
	deliver  jetstream.DeliverPolicy
	startSeq uint64
}

// eventSubjects are the consumer's filter subjects: the caller's tenant
// only, its VM streams only without audit:read.
func eventSubjects(p *Principal, types []string) []string {
	prefix := "accountdb.events." + p.TenantID.String() + "."
	streamType := "*"
	if !p.Can(auth.PermAuditRead) {
		streamType = "vm"
	}
	if len(types) == 0 {
		return []string{prefix + streamType + ".>"}
	}
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = prefix + streamType + "." + t
	}
	return out
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
	return slices.Compact(types), nil // overlapping filter subjects are refused
}

var errBadLastEventID = BadRequest("Last-Event-ID must be the id of an event of your tenant received from this feed, or 0 for the beginning of the log", nil)

// eventsStart turns Last-Event-ID into where the consumer starts.
func (id *identity) eventsStart(ctx context.Context, p *Principal, lastID string, f *eventFilter) error {
	if lastID == "" {
		f.deliver = jetstream.DeliverNewPolicy
		return nil
	}
	gp, err := strconv.ParseInt(lastID, 10, 64)
	if err != nil || gp < 0 {
		return errBadLastEventID
	}
	if gp == 0 {
		f.deliver = jetstream.DeliverAllPolicy
		return nil
	}
	// Row-level security scopes the look-up to the caller's tenant: another
	// tenant's event reads exactly like one that does not exist.
	var txid string
	err = tenantdb.ReadTx(ctx, id.pool, tenantdb.Tenant(p.TenantID), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT transaction_id::text FROM events WHERE global_position = $1`, gp).Scan(&txid)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return errBadLastEventID
	}
	if err != nil {
		return err
	}
	t, err := strconv.ParseUint(txid, 10, 64)
	if err != nil {
		return err
	}
	f.after = eventstore.Position{TransactionID: t, GlobalPosition: gp}
	seq, err := firstSeqAfter(ctx, id.events.js, "accountdb.events."+p.TenantID.String()+".>", f.after)
	if err != nil {
		return err
	}
	f.deliver, f.startSeq = jetstream.DeliverByStartSequencePolicy, seq
	return nil
}

// firstSeqAfter is the sequence of the first message on subject whose log
// position is after pos (or the sequence after the last message): the
// stream is in log order, so a binary search over sequences finds it in
// O(log n) direct gets, without trusting any clock.
func firstSeqAfter(ctx context.Context, js jetstream.JetStream, subject string, pos eventstore.Position) (uint64, error) {
	stream, err := js.Stream(ctx, eventstore.StreamName)
	if err != nil {
		return 0, err
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
			return 0, err
		}
		at, _, err := eventstore.MessagePositions(m.Header)
		if err != nil {
			return 0, err
		}
		if at.Less(pos) || at == pos {
			lo = m.Sequence + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// tenantOfSubject is the tenant token of accountdb.events.<tenant>.<stream>.<type>.
func tenantOfSubject(subject string) string {
	parts := strings.SplitN(subject, ".", 4)
	if len(parts) < 4 {
		return ""
	}
	return parts[2]
}

// streamEvents serves GET /v1/events.
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
	f := eventFilter{subjects: eventSubjects(p, types)}
	if err := id.eventsStart(r.Context(), p, r.Header.Get("Last-Event-ID"), &f); err != nil {
		WriteError(w, r, err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: f.subjects, DeliverPolicy: f.deliver,
		InactiveThreshold: 30 * time.Second}
	if f.deliver == jetstream.DeliverByStartSequencePolicy {
		cfg.OptStartSeq = f.startSeq
	}
	cons, err := feed.js.OrderedConsumer(ctx, eventstore.StreamName, cfg)
	if err != nil {
		WriteError(w, r, err)
		return
	}

	rc := http.NewResponseController(w)
	var (
		mu       sync.Mutex // orders the writer's deadlines with the drop
		dropped  bool
		finished bool // the handler returned: the connection may serve another request
		drop     = make(chan struct{})
	)
	defer func() {
		mu.Lock()
		finished = true
		mu.Unlock()
	}()
	dropClient := func() {
		mu.Lock()
		defer mu.Unlock()
		if !dropped && !finished {
			dropped = true
			close(drop)
			// Unblock a write stuck on a full socket.
			_ = rc.SetWriteDeadline(time.Now())
			loggerFrom(r).Info("event feed: slow client dropped", "request_id", RequestID(r.Context()), "buffer", feed.opts.Buffer)
		}
	}
	queue := make(chan jetstream.Msg, feed.opts.Buffer)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case queue <- m:
		default:
			dropClient()
		}
	}, jetstream.PullMaxMessages(min(feed.opts.Buffer, 500)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			loggerFrom(r).Debug("event feed consumer", "request_id", RequestID(r.Context()), "error", err)
		}))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	defer cc.Stop()
	consumerClosed := cc.Closed()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	write := func(b []byte, flush bool) bool {
		mu.Lock()
		if dropped {
			mu.Unlock()
			return false
		}
		_ = rc.SetWriteDeadline(time.Now().Add(feed.opts.WriteTimeout))
		mu.Unlock()
		_, err := w.Write(b)
		if err == nil && flush {
			err = rc.Flush()
		}
		if err != nil {
			loggerFrom(r).Debug("event feed: write failed", "request_id", RequestID(r.Context()), "error", err)
			return false
		}
		return true
	}
	if !write([]byte("retry: "+strconv.Itoa(eventsRetryMillis)+"\n\n"), true) {
		return
	}

	log := loggerFrom(r)
	heartbeat := time.NewTicker(feed.opts.Heartbeat)
	defer heartbeat.Stop()
	shutdown := feed.shuttingDown(r)
	after := f.after
	tenant := p.TenantID.String()
	for {
		select {
		case <-ctx.Done():
			return
		case <-shutdown:
			return
		case <-consumerClosed:
			log.Warn("event feed consumer stopped", "request_id", RequestID(r.Context()))
			return
		case <-drop:
			return
		case <-heartbeat.C:
			if !id.stillAllowed(ctx, p) {
				return
			}
			if !write([]byte(": ping\n\n"), true) {
				return
			}
		case m := <-queue:
			pos, _, err := eventstore.MessagePositions(m.Headers())
			if err != nil {
				log.Error("event feed: message without position", "request_id", RequestID(r.Context()), "error", err)
				return
			}
			if !after.Less(pos) {
				continue // at or before Last-Event-ID: already delivered
			}
			// The subject names the tenant; the filter makes another's
			// impossible, and this check keeps it so.
			if tenantOfSubject(m.Subject()) != tenant {
				continue
			}
			after = pos
			frame, ok := feed.frames.get(pos.GlobalPosition)
			if !ok {
				e, err := eventstore.DecodeMessage(m.Data())
				if err == nil && e.Position.GlobalPosition != pos.GlobalPosition {
					err = errors.New("the payload's position is not the header's")
				}
				if err == nil {
					frame, err = eventFrame(e)
				}
				if err != nil {
					log.Error("event feed: undecodable message", "request_id", RequestID(r.Context()), "error", err)
					return
				}
				feed.frames.put(pos.GlobalPosition, frame)
			}
			// Flush when nothing else is waiting: one syscall per burst.
			if !write(frame, len(queue) == 0) {
				return
			}
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
