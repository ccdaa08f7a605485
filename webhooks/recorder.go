package webhooks

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"time"
)

// recorder writes delivery records in batches, off the delivery path: a
// record is written within flushEvery of its attempt, many per
// transaction. Records are operational history, not events: one lost in a
// crash costs a line in the deliveries list, never a delivery.
type recorder struct {
	store *Store
	log   *slog.Logger
	in    chan Delivery
	sync  chan chan struct{}
}

const (
	recorderBatch = 500
	flushEvery    = 100 * time.Millisecond
)

func newRecorder(store *Store, log *slog.Logger) *recorder {
	return &recorder{store: store, log: log, in: make(chan Delivery, 4*recorderBatch), sync: make(chan chan struct{})}
}

// add queues d (waiting while the queue is full).
func (r *recorder) add(ctx context.Context, d Delivery) {
	select {
	case r.in <- d:
	case <-ctx.Done():
	}
}

// flush returns once everything added before it is written.
func (r *recorder) flush(ctx context.Context) {
	done := make(chan struct{})
	select {
	case r.sync <- done:
	case <-ctx.Done():
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (r *recorder) run(ctx context.Context) {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	var batch []Delivery
	write := func() {
		if len(batch) == 0 {
			return
		}
		// Written even while shutting down: the attempts were made.
		// One statement per tenant: the batch grouped by tenant, each
		// tenant's in the order made.
		slices.SortStableFunc(batch, func(a, b Delivery) int { return bytes.Compare(a.Tenant[:], b.Tenant[:]) })
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := r.store.Record(wctx, batch); err != nil {
			r.log.Warn("webhooks: recording deliveries", "n", len(batch), "err", err)
		}
		batch = batch[:0]
	}
	for {
		select {
		case d := <-r.in:
			batch = append(batch, d)
			if len(batch) >= recorderBatch {
				write()
			}
		case done := <-r.sync:
			for len(r.in) > 0 {
				batch = append(batch, <-r.in)
			}
			write()
			close(done)
		case <-t.C:
			write()
		case <-ctx.Done():
			for len(r.in) > 0 {
				batch = append(batch, <-r.in)
			}
			write()
			return
		}
	}
}
