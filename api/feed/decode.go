package feed

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// liveEvent is one event of a tenant's feed, decoded once for all of that
// tenant's subscribers in this process.
type liveEvent struct {
	seq        uint64 // ACCOUNTDB_EVENTS stream sequence
	pos        eventlog.Position
	streamType string
	eventType  string
	frames
}

// frames are an event's two SSE frames, shared: never modified. Which one a
// subscriber gets depends on it (auth.SeesEventMetadata), not on the event.
type frames struct {
	frame    []byte    // with the event's request metadata
	redacted []byte    // without it; nil when it has none (frame is then the same)
	actor    uuid.UUID // who caused the event
	made     time.Time // when its personal values were revealed
	gen      uint64    // the revealer's generation then
}

// framesMaxAge is how long cached frames are served: they hold revealed
// personal values, which an erasure or retention elsewhere may have
// destroyed since; after it they are decoded (and revealed) again. It is
// privacy.DefaultCacheTTL, the key cache's own bound.
const framesMaxAge = 30 * time.Second

// revealTimeout bounds the key look-ups of one event.
const revealTimeout = 5 * time.Second

// frameFor is the frame of ev that s may see.
func (s Subscriber) frameFor(ev liveEvent) []byte {
	if ev.redacted == nil || auth.SeesEventMetadata(s.AuditRead, s.User, ev.actor) {
		return ev.frame
	}
	return ev.redacted
}

// decode reads one message of the tenant's subjects: its sequence, log
// position, stream and event type, and SSE frames (from the cache when
// another reader encoded them already).
func (f *Feed) decode(m jetstream.Msg, tenant string) (liveEvent, error) {
	meta, err := m.Metadata()
	if err != nil {
		return liveEvent{}, err
	}
	pos, _, err := bus.MessagePositions(m.Headers())
	if err != nil {
		return liveEvent{}, err
	}
	// accountdb.events.<tenant>.<stream type>.<event type>: the filter makes
	// another tenant's subject impossible, and this check keeps it so.
	parts := strings.Split(strings.TrimPrefix(m.Subject(), bus.SubjectPrefix), ".")
	if len(parts) != 3 || parts[0] != tenant {
		return liveEvent{}, errors.New("a subject outside the tenant's: " + m.Subject())
	}
	ev := liveEvent{seq: meta.Sequence.Stream, pos: pos, streamType: parts[1], eventType: parts[2]}
	if fr, ok := f.frames.get(pos.GlobalPosition, f.generation()); ok {
		ev.frames = fr
		return ev, nil
	}
	e, err := bus.DecodeMessage(m.Data())
	if err == nil && e.Position.GlobalPosition != pos.GlobalPosition {
		err = errors.New("the payload's position is not the header's")
	}
	gen := f.generation()
	if err == nil && f.revealer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), revealTimeout)
		one := []eventlog.Event{e}
		err = f.revealer.Reveal(ctx, one)
		e = one[0]
		cancel()
	}
	if err == nil {
		ev.frames, err = eventFrames(e, f.body)
		ev.frames.gen = gen
	}
	if err != nil {
		return liveEvent{}, err
	}
	f.frames.put(pos.GlobalPosition, ev.frames)
	return ev, nil
}

// eventFrames encodes e with and without its request metadata.
func eventFrames(e eventlog.Event, body func(eventlog.Event) any) (frames, error) {
	fr := frames{actor: e.ActorID, made: time.Now()}
	var err error
	if fr.frame, err = eventFrame(e, body); err != nil {
		return frames{}, err
	}
	if e.Metadata != (eventlog.Metadata{}) {
		e.Metadata = eventlog.Metadata{}
		if fr.redacted, err = eventFrame(e, body); err != nil {
			return frames{}, err
		}
	}
	return fr, nil
}

// size is what fr holds, in bytes.
func (fr frames) size() int { return len(fr.frame) + len(fr.redacted) }

// frameCache keeps the encoded SSE frames of recent events, by global
// position: an event reaches every subscriber of its tenant, and its frames
// (id, type, JSON; with and without metadata) are the same for all of them,
// so they are encoded once, not once per connection. An event never changes
// once recorded. FIFO, bounded in bytes.
type frameCache struct {
	mu    sync.Mutex
	m     map[int64]frames
	order []int64
	bytes int
	max   int
}

const frameCacheBytes = 16 << 20

// generation is the revealer's generation (0 without one).
func (f *Feed) generation() uint64 {
	if f.revealer == nil {
		return 0
	}
	return f.revealer.Generation()
}

func (c *frameCache) get(pos int64, gen uint64) (frames, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[pos]
	if ok && (b.gen != gen || time.Since(b.made) > framesMaxAge) {
		return frames{}, false
	}
	return b, ok
}

func (c *frameCache) put(pos int64, fr frames) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fr.size() > c.max/4 {
		return
	}
	if old, ok := c.m[pos]; ok { // a stale entry, decoded again: replaced in place
		c.bytes += fr.size() - old.size()
		c.m[pos] = fr
		return
	}
	c.m[pos] = fr
	c.order = append(c.order, pos)
	c.bytes += fr.size()
	for c.bytes > c.max && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		c.bytes -= c.m[old].size()
		delete(c.m, old)
	}
}

// eventFrame is the SSE frame of e: id, event and data (body(e) as one
// line of JSON).
func eventFrame(e eventlog.Event, body func(eventlog.Event) any) ([]byte, error) {
	data, err := json.Marshal(body(e)) // compact: one line
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
