package feed

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// Options tunes GET /v1/events; zero values take the defaults.
type Options struct {
	Heartbeat    time.Duration // between ": ping" comments (default 15 s)
	Buffer       int           // events queued for a slow client before it is dropped (default 256)
	WriteTimeout time.Duration // one write's deadline before the client is dropped (default 10 s)
}

const (
	defaultHeartbeat    = 15 * time.Second
	defaultBuffer       = 256
	defaultWriteTimeout = 10 * time.Second
	// retryMillis is the reconnection delay suggested to EventSource.
	retryMillis = 1000
)

// Config is what a Feed is built from.
type Config struct {
	Bus       Bus // nil: every stream is refused with ErrNoBus
	Positions Positions
	Sessions  Sessions
	// Body is an event as the API represents it, written as the data line
	// of its frame (the same JSON as the API's other event lists).
	Body func(eventlog.Event) any
	// RevokingTypes are the event types after which a subscriber of the
	// tenant may no longer be allowed its stream (a suspension, a user
	// disabled or demoted, sessions ended): when one passes its tenant's
	// hub, every subscriber of the tenant reads its session again at once,
	// not at its next heartbeat.
	RevokingTypes []string
	// Revealer opens the sealed personal values of each event (the bus
	// carries the log's ciphertext; see package privacy); nil serves
	// events as carried.
	Revealer Revealer
	Options  Options
	Metrics  prometheus.Registerer // nil: the metrics are not registered
}

// Revealer opens events' sealed personal values (privacy.Revealer).
// Generation changes when keys were destroyed: frames revealed at another
// generation are decoded again.
type Revealer interface {
	Reveal(ctx context.Context, evs []eventlog.Event) error
	Generation() uint64
}

// ErrNoBus refuses a stream when the process has no JetStream to read.
var ErrNoBus = errors.New("feed: no event bus configured")

// Feed is the shared state of the live feed of every tenant in this process.
type Feed struct {
	bus       Bus
	positions Positions
	sessions  Sessions
	body      func(eventlog.Event) any
	revealer  Revealer
	opts      Options
	metrics   *metrics
	frames    *frameCache
	revoking  map[string]bool

	mu       sync.Mutex
	shutdown map[*http.Server]chan struct{}

	hubsMu sync.Mutex
	hubs   map[string]*tenantHub // by tenant id
}

// New builds the feed and registers its metrics.
func New(c Config) *Feed {
	o := c.Options
	if o.Heartbeat <= 0 {
		o.Heartbeat = defaultHeartbeat
	}
	if o.Buffer <= 0 {
		o.Buffer = defaultBuffer
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = defaultWriteTimeout
	}
	revoking := map[string]bool{}
	for _, t := range c.RevokingTypes {
		revoking[t] = true
	}
	return &Feed{revoking: revoking, bus: c.Bus, positions: c.Positions, sessions: c.Sessions, body: c.Body, revealer: c.Revealer, opts: o,
		metrics: newMetrics(c.Metrics), frames: &frameCache{m: map[int64]frames{}, max: frameCacheBytes},
		shutdown: map[*http.Server]chan struct{}{}, hubs: map[string]*tenantHub{}}
}

// Subscriber is the caller of GET /v1/events, as the API authenticated it.
type Subscriber struct {
	Tenant, User, Session uuid.UUID
	// AuditRead: the caller sees every event of its tenant, not only the
	// VM events that vm:read allows.
	AuditRead bool
	// Log and RequestID are the request's, for the connection's log lines.
	Log       *slog.Logger
	RequestID string
}

// Serve streams the subscriber's events to w until the client leaves, the
// server shuts down or drops it, or its session ends. It returns an error
// only when it has written nothing: the caller answers it.
func (f *Feed) Serve(w http.ResponseWriter, r *http.Request, s Subscriber) error {
	if f.bus == nil {
		return ErrNoBus
	}
	c, err := f.open(w, r, s)
	if err != nil {
		return err
	}
	defer c.close()
	c.serve()
	return nil
}

// shuttingDown is closed when the request's server begins a graceful
// shutdown. http.Server.Shutdown waits for active requests but does not
// cancel them, so streams must end on their own for it to finish.
func (f *Feed) shuttingDown(r *http.Request) <-chan struct{} {
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
