package feed

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/eventlog"
)

// conn is one subscriber's stream. Opened (open), it may still have the
// past to read (catchUp, for a resumed connection) before it takes its
// tenant's live events from the hub (live).
//
// Without Last-Event-ID the connection joins its tenant's hub and is live at
// once. With one it reads from its resume point through its own ordered
// consumer, and once that consumer is near the end of the stream it joins
// the hub: the hub hands it every event after sequence `from`, and the
// consumer goes on until it has delivered everything up to `from`. The two
// overlap rather than leave a gap; the overlap is skipped by log position.
type conn struct {
	feed   *Feed
	sub    Subscriber
	tenant string
	log    *slog.Logger
	match  func(streamType, eventType string) bool
	ctx    context.Context
	cancel context.CancelFunc

	w  http.ResponseWriter
	rc *http.ResponseController
	r  *http.Request

	place  *subscriber // the connection's place in its tenant's hub
	joined bool
	from   uint64 // the hub hands place every event after this sequence
	detach func()
	past   *pastReader // nil: nothing (more) to read from the past
	after  eventlog.Position

	heartbeat *time.Ticker
	shutdown  <-chan struct{}

	mu        sync.Mutex // orders the writer's deadlines with the drop
	dropped   bool
	finished  bool // the handler returned: the connection may serve another request
	gone      chan struct{}
	unflushed bool // written since the last flush (the serving goroutine only)
}

// open reads the request, finds its resume point and joins the hub or
// starts reading the past (or both); it writes nothing.
func (f *Feed) open(w http.ResponseWriter, r *http.Request, s Subscriber) (_ *conn, err error) {
	types, err := parseTypes(r)
	if err != nil {
		return nil, err
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	ctx, cancel := context.WithCancel(r.Context())
	c := &conn{feed: f, sub: s, tenant: s.Tenant.String(), log: s.Log, match: matcher(s, types), ctx: ctx, cancel: cancel,
		w: w, rc: http.NewResponseController(w), r: r, detach: func() {}, gone: make(chan struct{})}
	c.place = &subscriber{match: c.match, live: make(chan liveEvent, f.opts.Buffer), recheck: make(chan struct{}, 1), drop: c.drop}
	defer func() {
		if err != nil {
			c.close()
		}
	}()

	lastID := r.Header.Get("Last-Event-ID")
	resuming := lastID != ""
	var rp resumePoint
	if resuming {
		if rp, err = f.resume(ctx, s.Tenant, lastID); err != nil {
			return nil, err
		}
	}
	c.after = rp.after
	// Joining first when there is no past to read (or none yet): then only
	// the events that reach the hub between the look-up and the join, if
	// any, come through the connection's own consumer.
	if !resuming || rp.startSeq > rp.lastSeq {
		if err := c.join(); err != nil {
			return nil, err
		}
	}
	if resuming && (!c.joined || c.from >= rp.startSeq) {
		if c.past, err = f.readPast(ctx, c.log, c.tenant, rp.startSeq); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// join adds the connection to its tenant's hub.
func (c *conn) join() error {
	from, detach, err := c.feed.attach(c.ctx, c.log, c.tenant, c.place)
	if err != nil {
		return err
	}
	c.from, c.detach, c.joined = from, detach, true
	return nil
}

// close releases what open took: the past's consumer, the hub's place.
func (c *conn) close() {
	if c.past != nil {
		c.past.stop()
	}
	c.detach()
	c.mu.Lock()
	c.finished = true
	c.mu.Unlock()
	c.cancel()
}

// serve writes the stream: the catch-up phase if there is a past to read,
// then the live phase, until either ends the stream.
func (c *conn) serve() {
	h := c.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.w.WriteHeader(http.StatusOK)
	c.feed.metrics.subscribers.Inc()
	defer c.feed.metrics.subscribers.Dec()
	if !c.write([]byte("retry: "+strconv.Itoa(retryMillis)+"\n\n"), true) {
		return
	}
	c.heartbeat = time.NewTicker(c.feed.opts.Heartbeat)
	defer c.heartbeat.Stop()
	c.shutdown = c.feed.shuttingDown(c.r)
	if c.past != nil && !c.catchUp() {
		return
	}
	c.live()
}

// ping is the heartbeat: the session is read again, and a comment keeps
// proxies from closing an idle stream. False ends the stream.
func (c *conn) ping() bool {
	return c.stillAllowed() && c.write([]byte(": ping\n\n"), true)
}

// stillAllowed re-reads the session: a stream outlives its access token,
// but not its session, nor the permissions it was opened with.
func (c *conn) stillAllowed() bool {
	roles, active, err := c.feed.sessions.SessionRoles(c.ctx, c.sub.Tenant, c.sub.User, c.sub.Session)
	if err != nil {
		return c.ctx.Err() == nil // a failed look-up does not end the stream
	}
	return active && auth.HasPermission(roles, auth.PermVMRead) &&
		auth.HasPermission(roles, auth.PermAuditRead) == c.sub.AuditRead
}
