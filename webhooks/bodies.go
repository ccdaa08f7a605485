package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/nats-io/nats.go/jetstream"
)

// encoded is an event decoded from its message and the body that
// delivers it (the same for every endpoint: only the headers differ).
type encoded struct {
	event eventlog.Event
	body  []byte
	made  time.Time
	gen   uint64 // the revealer's generation when it was revealed
}

// bodies keeps the last events' encodings, so that the endpoints of one
// tenant (which all read the same messages at about the same time) decode
// and encode each event once between them. Keyed by the message id (the
// event id, bus.NewMessage); a bounded ring.
type bodies struct {
	revealer Revealer
	mu       sync.Mutex
	m        map[string]encoded
	ring     []string
	next     int
}

const bodiesKept = 4096

func newBodies(r Revealer) *bodies {
	return &bodies{revealer: r, m: make(map[string]encoded, bodiesKept), ring: make([]string, bodiesKept)}
}

// bodiesMaxAge is how long a cached body is delivered: it holds revealed
// personal values, which an erasure elsewhere may have destroyed since
// (privacy.DefaultCacheTTL, the key cache's own bound).
const bodiesMaxAge = 30 * time.Second

// errReveal: the event's keys could not be read now; the delivery is
// retried, not dropped.
var errReveal = errors.New("webhooks: cannot read the event's keys")

// of is m's event and body, from the cache or decoded and encoded now.
func (b *bodies) of(m jetstream.Msg) (encoded, error) {
	id := m.Headers().Get(jetstream.MsgIDHeader)
	b.mu.Lock()
	enc, ok := b.m[id]
	b.mu.Unlock()
	var gen uint64
	if b.revealer != nil {
		gen = b.revealer.Generation()
	}
	if ok && id != "" && enc.gen == gen && time.Since(enc.made) <= bodiesMaxAge {
		return enc, nil
	}
	e, err := bus.DecodeMessage(m.Data())
	if err != nil {
		return encoded{}, err
	}
	if b.revealer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		one := []eventlog.Event{e}
		err := b.revealer.Reveal(ctx, one)
		cancel()
		if err != nil {
			return encoded{}, fmt.Errorf("%w: %w", errReveal, err)
		}
		e = one[0]
	}
	if enc, err = encode(e); err != nil || id == "" {
		return enc, err
	}
	enc.gen = gen
	b.mu.Lock()
	defer b.mu.Unlock()
	if old := b.ring[b.next]; old != "" {
		delete(b.m, old)
	}
	b.ring[b.next], b.m[id] = id, enc
	b.next = (b.next + 1) % len(b.ring)
	return enc, nil
}

// encode is the delivery body of e.
func encode(e eventlog.Event) (encoded, error) {
	body, err := json.Marshal(Payload{Type: e.Type, Timestamp: e.RecordedAt.UTC(), Data: e})
	return encoded{event: e, body: body, made: time.Now()}, err
}

// item is a message read, decoded once for every worker it is handed to
// (read only, shared).
type item struct {
	seq uint64
	enc encoded
	// event: the message is an event; when not, the cursor passes it.
	event bool
	// err: the event's keys cannot be read now; it is read again.
	err error
}

// decode reads m (of subject's consumer); nil when m has no metadata.
func (d *Dispatcher) decode(m jetstream.Msg, subject string) *item {
	meta, err := m.Metadata()
	if err != nil {
		d.log.Error("webhooks: a message without metadata", "subject", subject, "err", err)
		return nil
	}
	it := &item{seq: meta.Sequence.Stream}
	pos, _, err := bus.MessagePositions(m.Headers())
	if err == nil {
		it.enc, err = d.bodies.of(m)
	}
	if errors.Is(err, errReveal) {
		it.err = err
		return it
	}
	if err != nil {
		d.log.Error("webhooks: not an event message", "subject", subject, "seq", it.seq, "err", err)
		return it
	}
	it.enc.event.Position = pos
	it.event = true
	return it
}
