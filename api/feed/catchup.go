package feed

import (
	"context"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

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
func (f *Feed) readPast(ctx context.Context, log *slog.Logger, tenant string, startSeq uint64) (*pastReader, error) {
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
			stopOrdered(f.bus, cons, cc)
		})
	}}, nil
}

// catchUp is a resumed connection's first phase: it writes the past from
// its own consumer, joins the hub once that consumer is near the end of the
// stream, and stops the consumer once it has delivered everything up to
// where the hub took over. It reports whether the connection goes live.
func (c *conn) catchUp() bool {
	for {
		select {
		case <-c.ctx.Done():
			return false
		case <-c.shutdown:
			return false
		case <-c.gone:
			return false
		case <-c.past.done:
			c.log.Warn("event feed consumer stopped", "request_id", c.sub.RequestID)
			return false
		case <-c.heartbeat.C:
			if !c.ping() {
				return false
			}
		case m := <-c.past.msgs:
			ev, err := c.feed.decode(m, c.tenant)
			if err != nil {
				c.log.Error("event feed: undecodable message", "request_id", c.sub.RequestID, "error", err)
				return false
			}
			if c.after.Less(ev.pos) && c.match(ev.streamType, ev.eventType) {
				c.after = ev.pos
				if !c.write(c.sub.frameFor(ev), false) {
					return false
				}
				c.feed.metrics.sent.Inc()
			}
			if !c.joined {
				meta, err := m.Metadata()
				if err == nil && meta.NumPending <= uint64(c.feed.opts.Buffer/4) {
					if err := c.join(); err != nil {
						c.log.Error("event feed: joining the tenant's live feed", "request_id", c.sub.RequestID, "error", err)
						return false
					}
				}
			}
			if c.joined && ev.seq >= c.from {
				// Everything up to the hub's start is delivered: live.
				c.past.stop()
				return c.flushWritten()
			}
			// Flush when nothing else is waiting: one syscall per burst
			// (also after a message the client did not ask for).
			if len(c.past.msgs) == 0 && !c.flushWritten() {
				return false
			}
		}
	}
}
