package feed

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// The live tail of GET /v1/events is shared: one ordered consumer per tenant
// per API process (a tenantHub), filtered on that tenant's subjects, decodes
// and encodes each event once and hands the frame to every subscriber of the
// tenant in this process. A consumer per connection would make the NATS
// server deliver every event once per subscriber: at 100 subscribers per
// tenant that is 100 deliveries, 100 decodes and 100 encodes of the same
// event, and it was what kept the feed from its latency bar on two cores
// (docs/BENCHMARKS.md, figure 6). A connection that resumes with
// Last-Event-ID still reads the past through its own ordered consumer, and
// joins its tenant's hub once it has caught up (conn.catchUp).

// subscriber is one connection's place in a hub.
type subscriber struct {
	match func(streamType, eventType string) bool
	live  chan liveEvent
	// recheck is signalled (without blocking; capacity 1) when an event
	// that may take access away passes the hub, matched or not: the
	// connection reads its session again at once rather than at its next
	// heartbeat.
	recheck chan struct{}
	// drop ends the connection: its buffer is full, or the hub stopped.
	// Called with the hub's lock held, so it must not block.
	drop func(reason string)
}

// tenantHub is the shared live feed of one tenant.
type tenantHub struct {
	tenant string
	feed   *Feed
	cons   jetstream.Consumer
	cc     jetstream.ConsumeContext
	log    *slog.Logger

	mu sync.Mutex
	// last is the stream sequence of the last message handed out: a
	// subscriber added now receives exactly the tenant's messages after it.
	last uint64
	subs map[*subscriber]struct{}
}

// tenantSubjects is every subject of the tenant's events.
func tenantSubjects(tenant string) string {
	return bus.SubjectPrefix + tenant + ".>"
}

// attach adds sub to its tenant's hub, starting the hub if this is the
// process's first subscriber of the tenant. From is the stream sequence
// after which sub receives every matching event of the tenant; detach must
// be called when the connection ends.
func (f *Feed) attach(ctx context.Context, log *slog.Logger, tenant string, sub *subscriber) (from uint64, detach func(), err error) {
	f.hubsMu.Lock()
	defer f.hubsMu.Unlock()
	h := f.hubs[tenant]
	if h == nil {
		if h, err = f.startHub(ctx, log, tenant); err != nil {
			return 0, nil, err
		}
		f.hubs[tenant] = h
	}
	h.mu.Lock()
	h.subs[sub] = struct{}{}
	from = h.last
	h.mu.Unlock()
	return from, func() { f.detach(h, sub) }, nil
}

// detach removes sub; the last subscriber to leave stops the hub's consumer.
func (f *Feed) detach(h *tenantHub, sub *subscriber) {
	f.hubsMu.Lock()
	defer f.hubsMu.Unlock()
	h.mu.Lock()
	delete(h.subs, sub)
	empty := len(h.subs) == 0
	h.mu.Unlock()
	if empty && f.hubs[h.tenant] == h {
		delete(f.hubs, h.tenant)
		stopOrdered(f.bus, h.cons, h.cc)
	}
}

// startHub starts the tenant's shared consumer at the message after the
// stream's current last one, so that last is exact from the start. It logs
// to log, the logger of the request that started it.
func (f *Feed) startHub(ctx context.Context, log *slog.Logger, tenant string) (*tenantHub, error) {
	stream, err := f.bus.Stream(ctx, bus.StreamName)
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	h := &tenantHub{tenant: tenant, feed: f, log: log, last: info.State.LastSeq, subs: map[*subscriber]struct{}{}}
	h.cons, h.cc, err = f.consumeTenant(ctx, log, tenant, info.State.LastSeq+1, 500, h.dispatch)
	if err != nil {
		return nil, err
	}
	// An ordered consumer recreates itself after NATS outages; if it stops
	// for good, its subscribers are dropped and resume with Last-Event-ID
	// on a new hub. Closed is also how a stopped hub leaves the gauge.
	f.metrics.tenantConsumers.Inc()
	go func() {
		<-h.cc.Closed()
		f.metrics.tenantConsumers.Dec()
		f.hubsMu.Lock()
		if f.hubs[tenant] == h {
			delete(f.hubs, tenant)
		}
		f.hubsMu.Unlock()
		h.dropAll(dropConsumerStopped)
	}()
	return h, nil
}

// consumeTenant starts an ordered consumer of the tenant's events from
// stream sequence startSeq, pulling up to pull messages at a time, and hands
// each to handle: the tenant's hub, or a resumed connection reading the past.
func (f *Feed) consumeTenant(ctx context.Context, log *slog.Logger, tenant string, startSeq uint64, pull int,
	handle jetstream.MessageHandler) (jetstream.Consumer, jetstream.ConsumeContext, error) {
	cons, err := f.bus.OrderedConsumer(ctx, bus.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{tenantSubjects(tenant)},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       startSeq,
		InactiveThreshold: 30 * time.Second, // a crashed process's consumer goes away
	})
	if err != nil {
		return nil, nil, err
	}
	cc, err := cons.Consume(handle, jetstream.PullMaxMessages(pull),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			log.Debug("event feed: consumer", "tenant_id", tenant, "error", err)
		}))
	if err != nil {
		return nil, nil, err
	}
	return cons, cc, nil
}

// dispatch hands one message to every subscriber it matches. It never
// blocks: a subscriber whose buffer is full is dropped.
func (h *tenantHub) dispatch(m jetstream.Msg) {
	ev, err := h.feed.decode(m, h.tenant)
	if err != nil {
		// Never skipped silently: every subscriber is dropped, and resumes
		// (and meets the same message) through its own consumer.
		h.log.Error("event feed: undecodable message", "tenant_id", h.tenant, "subject", m.Subject(), "error", err)
		h.dropAll(dropUndecodable)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = ev.seq
	revokes := h.feed.revoking[ev.eventType]
	for s := range h.subs {
		if revokes {
			select {
			case s.recheck <- struct{}{}:
			default: // a recheck is pending already
			}
		}
		if !s.match(ev.streamType, ev.eventType) {
			continue
		}
		select {
		case s.live <- ev:
		default:
			s.drop(dropSlowClient)
		}
	}
}

func (h *tenantHub) dropAll(reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.drop(reason)
	}
}

// stopOrdered stops an ordered consumer and deletes it on the server: on
// Stop nats.go only stops pulling, and the server would keep the consumer
// (and match every new message against its filter) until its
// InactiveThreshold passes.
func stopOrdered(js Bus, cons jetstream.Consumer, cc jetstream.ConsumeContext) {
	cc.Stop()
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteConsumer(ctx, bus.StreamName, info.Name)
	}()
}
