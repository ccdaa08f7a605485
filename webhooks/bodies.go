package webhooks

import (
	"encoding/json"
	"sync"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/nats-io/nats.go/jetstream"
)

// encoded is an event decoded from its message and the body that
// delivers it (the same for every endpoint: only the headers differ).
type encoded struct {
	event eventlog.Event
	body  []byte
}

// bodies keeps the last events' encodings, so that the endpoints of one
// tenant (which all read the same messages at about the same time) decode
// and encode each event once between them. Keyed by the message id (the
// event id, bus.NewMessage); a bounded ring.
type bodies struct {
	mu   sync.Mutex
	m    map[string]encoded
	ring []string
	next int
}

const bodiesKept = 4096

func newBodies() *bodies {
	return &bodies{m: make(map[string]encoded, bodiesKept), ring: make([]string, bodiesKept)}
}

// of is m's event and body, from the cache or decoded and encoded now.
func (b *bodies) of(m jetstream.Msg) (encoded, error) {
	id := m.Headers().Get(jetstream.MsgIDHeader)
	b.mu.Lock()
	enc, ok := b.m[id]
	b.mu.Unlock()
	if ok && id != "" {
		return enc, nil
	}
	e, err := bus.DecodeMessage(m.Data())
	if err != nil {
		return encoded{}, err
	}
	if enc, err = encode(e); err != nil || id == "" {
		return enc, err
	}
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
	return encoded{event: e, body: body}, err
}
