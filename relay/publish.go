package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/nats-io/nats.go/jetstream"
)

// align sets where publishing continues from: the stream's last message, if
// the stream has one. That covers a relay that died after JetStream stored a
// batch but before its checkpoint was saved (no republishing, even after the
// duplicate window has passed), and a stream that lost messages (they are
// published again). A last message that this database does not hold is an
// operator error (a stream of another installation) and is reported, not
// papered over.
func (r *Relay) align(ctx context.Context, lock *publisherLock, head streamHead) (streamHead, error) {
	if err := r.natsConnected(); err != nil {
		return head, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.AckTimeout)
	defer cancel()
	stream, err := bus.EnsureStream(ctx, r.js)
	if err != nil {
		return head, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return head, fmt.Errorf("stream %s info: %w", bus.StreamName, err)
	}
	var h streamHead
	switch {
	case info.State.LastSeq == 0:
		// A fresh stream: the whole log belongs in it.
		if head.pos != eventlog.Start {
			r.log.Warn("stream is empty: publishing the log again from the start",
				"stream", bus.StreamName, "checkpoint", head.pos.GlobalPosition)
		}
		h = streamHead{pos: eventlog.Start}
	default:
		msg, err := stream.GetMsg(ctx, info.State.LastSeq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			// The last message was removed (limits or an operator): its
			// position is unknown, so trust the checkpoint.
			return streamHead{pos: head.pos, seq: info.State.LastSeq}, nil
		}
		if err != nil {
			return head, fmt.Errorf("stream %s last message: %w", bus.StreamName, err)
		}
		pos, _, err := bus.MessagePositions(msg.Header)
		if err != nil {
			return head, fmt.Errorf("stream %s last message (sequence %d): %w", bus.StreamName, msg.Sequence, err)
		}
		id, dbPos, found, err := r.store.EventAt(ctx, pos.GlobalPosition)
		if err != nil {
			return head, err
		}
		msgID := msg.Header.Get(jetstream.MsgIDHeader)
		if !found || dbPos != pos || id.String() != msgID {
			return head, fmt.Errorf("stream %s ends with event %q at position %d, which this database does not hold",
				bus.StreamName, eventlog.Excerpt(msgID), pos.GlobalPosition)
		}
		h = streamHead{pos: pos, seq: msg.Sequence}
	}
	if h.pos != head.pos {
		r.log.Info("relay checkpoint moved to the stream's last message",
			"from", head.pos.GlobalPosition, "to", h.pos.GlobalPosition)
		if err := lock.saveCheckpoint(ctx, h.pos); err != nil {
			return head, err
		}
		r.setCheckpoint(h.pos)
	}
	return h, nil
}

// publish sends a batch with async publishes and waits for every ack. It
// returns the new head only if JetStream stored (or already had) all of them.
func (r *Relay) publish(ctx context.Context, events []eventlog.Event, head streamHead) (streamHead, error) {
	// Publishing while disconnected would only fill the client's reconnect buffer.
	if err := r.natsConnected(); err != nil {
		return head, err
	}
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	prev := head
	for _, e := range events {
		msg, err := bus.NewMessage(e, prev.pos, prev.seq)
		if err != nil {
			return head, err
		}
		f, err := r.js.PublishMsgAsync(msg)
		if err != nil {
			return head, fmt.Errorf("publish event at %d: %w", e.Position.GlobalPosition, err)
		}
		futures = append(futures, f)
		prev = streamHead{pos: e.Position, seq: prev.seq + 1}
	}
	timeout := time.NewTimer(r.opts.AckTimeout)
	defer timeout.Stop()
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if i == len(futures)-1 {
				prev.seq = ack.Sequence // where the stream really ends
			}
			if ack.Duplicate {
				r.metrics.duplicates.Inc()
			} else {
				r.metrics.published.Inc()
			}
			r.metrics.lag.Observe(time.Since(events[i].RecordedAt).Seconds())
		case err := <-f.Err():
			return head, fmt.Errorf("publish event at %d: %w", events[i].Position.GlobalPosition, err)
		case <-timeout.C:
			return head, fmt.Errorf("publish: no acknowledgement within %s", r.opts.AckTimeout)
		case <-ctx.Done():
			return head, ctx.Err()
		}
	}
	return prev, nil
}

// natsConnected fails fast while the client is reconnecting, rather than
// waiting out request and ack timeouts.
func (r *Relay) natsConnected() error {
	if nc := r.js.Conn(); nc != nil && !nc.IsConnected() {
		return fmt.Errorf("nats connection %s", nc.Status())
	}
	return nil
}
