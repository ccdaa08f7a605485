package webhooks

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// A feed reads one filter subject (a tenant's events, or every tenant's for
// platform endpoints) through one ordered consumer and hands each message,
// decoded once, to the workers of this process that read that subject and
// have caught up with it. Without it the server sent every event once per
// endpoint, and each worker decoded it again: ten times the bus traffic for
// a tenant with ten endpoints.
//
// The feed never waits for a worker: each has a bounded queue, and a worker
// whose queue is full (its endpoint is slow, or it is retrying a failure,
// which leaves the feed) is dropped from it and reads on from its own cursor
// with a consumer of its own, joining again once it has caught up. So a slow
// or dead endpoint never delays another, and what is durable per endpoint is
// still only its cursor row (webhook_cursors).
type feed struct {
	subject string
	// last is the stream sequence of the last message handed out (before
	// the first, the one the feed started after); a worker whose cursor is
	// at or past it misses nothing by joining. Guarded by feeds.mu.
	last   uint64
	subs   map[*worker]*subscription
	cancel context.CancelFunc
}

// subscription is a worker's place in a feed.
type subscription struct {
	ch chan *item
	// skip: the worker has read up to this sequence already.
	skip uint64
	// err is why the feed ended (written before ch is closed); nil when the
	// worker was dropped for falling behind.
	err error
}

// feedQueue is how many messages a worker may be behind its feed before it
// is dropped to read on by itself.
const feedQueue = 256

// feeds are the dispatcher's feeds, one per subject read.
type feeds struct {
	d  *Dispatcher
	mu sync.Mutex
	m  map[string]*feed
	wg sync.WaitGroup
}

// join subscribes w to subject's feed when w's cursor (pos) has caught up
// with it, starting the feed just after pos if there is none; nil when w
// must read by itself (behind the feed, or with no cursor yet: a new
// endpoint reads from its start time, which only its own consumer can).
func (fs *feeds) join(w *worker, subject string, pos uint64) *subscription {
	if pos == 0 {
		return nil
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.m[subject]
	switch {
	case f == nil:
		ctx, cancel := context.WithCancel(context.Background())
		f = &feed{subject: subject, last: pos, subs: map[*worker]*subscription{}, cancel: cancel}
		fs.m[subject] = f
		fs.wg.Add(1)
		go fs.run(ctx, f, pos)
	case pos < f.last:
		return nil
	}
	s := &subscription{ch: make(chan *item, feedQueue), skip: pos}
	f.subs[w] = s
	return s
}

// leave unsubscribes w (if the feed has not dropped it already); the feed
// stops with its last worker.
func (fs *feeds) leave(w *worker, subject string, s *subscription) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.m[subject]; f != nil && f.subs[w] == s {
		delete(f.subs, w)
		fs.stopIfIdle(f)
	}
}

// stopIfIdle ends f once nobody reads it. Called with fs.mu held.
func (fs *feeds) stopIfIdle(f *feed) {
	if len(f.subs) == 0 && fs.m[f.subject] == f {
		delete(fs.m, f.subject)
		f.cancel()
	}
}

// wait returns once every feed has stopped and deleted its consumer.
func (fs *feeds) wait() { fs.wg.Wait() }

func (fs *feeds) run(ctx context.Context, f *feed, after uint64) {
	defer fs.wg.Done()
	err := fs.read(ctx, f, after)
	if err == nil && ctx.Err() == nil {
		err = errors.New("webhooks: a feed's reading ended")
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.m[f.subject] == f {
		delete(fs.m, f.subject)
	}
	for w, s := range f.subs {
		s.err = err
		close(s.ch)
		delete(f.subs, w)
	}
	f.cancel()
}

// read hands out f's messages from just after the sequence after until ctx
// ends (nil) or the stream cannot be read.
func (fs *feeds) read(ctx context.Context, f *feed, after uint64) error {
	d := fs.d
	// Named after the tenant (for an operator's listing), "all" for the
	// platform endpoints' subject.
	name := strings.NewReplacer("-", "", ".", "", ">", "").Replace(strings.TrimPrefix(f.subject, bus.SubjectPrefix))
	if name == "" {
		name = "all"
	}
	cons, err := d.js.OrderedConsumer(ctx, bus.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{f.subject},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    after + 1,
		// Unique, as a worker's: a feed stopped is deleted a moment later.
		NamePrefix:        "hookfeed_" + name + "_" + uuid.NewString()[:8],
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return err
	}
	msgs, err := cons.Messages(jetstream.PullMaxMessages(feedQueue))
	if err != nil {
		return err
	}
	defer d.release(ctx, cons, msgs)()
	for {
		m, err := msgs.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return err
		}
		if it := d.decode(m, f.subject); it != nil {
			fs.hand(f, it)
		}
	}
}

// hand gives it to every worker of f that has not read it yet, dropping
// those whose queue is full: the feed never waits for an endpoint.
func (fs *feeds) hand(f *feed, it *item) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f.last = it.seq
	for w, s := range f.subs {
		if it.seq <= s.skip {
			continue
		}
		select {
		case s.ch <- it:
		default:
			delete(f.subs, w)
			close(s.ch)
		}
	}
	fs.stopIfIdle(f)
}

// release stops msgs when ctx ends; the function it returns, deferred by
// the reader, stops them and deletes cons on the server at once, rather
// than leaving an ordered consumer to its inactivity threshold (a worker's
// or a feed's consumer is never read again once its reader returns).
func (d *Dispatcher) release(ctx context.Context, cons jetstream.Consumer, msgs jetstream.MessagesContext) func() {
	stop := context.AfterFunc(ctx, msgs.Stop)
	return func() {
		stop()
		msgs.Stop()
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = d.js.DeleteConsumer(dctx, bus.StreamName, info.Name)
		}
	}
}
