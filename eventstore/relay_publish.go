package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// align sets where publishing continues from: the stream's last message, if
// the stream has one. That covers a relay that died after JetStream stored a
// batch but before its checkpoint was saved (no republishing, even after the
// duplicate window has passed), and a stream that lost messages (they are
// published again). A last message that this database does not hold is an
// operator error (a stream of another installation) and is reported, not
// papered over.
func (r *Relay) align(ctx context.Context, lock *relayLock, head relayHead) (relayHead, error) {
	if err := r.natsConnected(); err != nil {
		return head, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.AckTimeout)
	defer cancel()
	stream, err := EnsureStream(ctx, r.js)
	if err != nil {
		return head, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return head, fmt.Errorf("stream %s info: %w", StreamName, err)
	}
	var h relayHead
	switch {
	case info.State.LastSeq == 0:
		// A fresh stream: the whole log belongs in it.
		if head.pos != Start {
			r.log.Warn("stream is empty: publishing the log again from the start",
				"stream", StreamName, "checkpoint", head.pos.GlobalPosition)
		}
		h = relayHead{pos: Start}
	default:
		msg, err := stream.GetMsg(ctx, info.State.LastSeq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			// The last message was removed (limits or an operator): nothing to
			// chain to, so trust the checkpoint.
			return relayHead{pos: head.pos}, nil
		}
		if err != nil {
			return head, fmt.Errorf("stream %s last message: %w", StreamName, err)
		}
		pos, _, err := MessagePositions(msg.Header)
		if err != nil {
			return head, fmt.Errorf("stream %s last message (sequence %d): %w", StreamName, msg.Sequence, err)
		}
		id, dbPos, found, err := r.store.eventAt(ctx, pos.GlobalPosition)
		if err != nil {
			return head, err
		}
		msgID := msg.Header.Get(jetstream.MsgIDHeader)
		if !found || dbPos != pos || id.String() != msgID {
			return head, fmt.Errorf("stream %s ends with event %q at position %d, which this database does not hold",
				StreamName, truncate(msgID), pos.GlobalPosition)
		}
		h = relayHead{pos: pos, id: msgID}
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
func (r *Relay) publish(ctx context.Context, events []Event, head relayHead) (relayHead, error) {
	// Publishing while disconnected would only fill the client's reconnect buffer.
	if err := r.natsConnected(); err != nil {
		return head, err
	}
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	prev := head
	for _, e := range events {
		msg, err := newMessage(e, prev.pos, prev.id)
		if err != nil {
			return head, err
		}
		f, err := r.js.PublishMsgAsync(msg)
		if err != nil {
			return head, fmt.Errorf("publish event at %d: %w", e.Position.GlobalPosition, err)
		}
		futures = append(futures, f)
		prev = relayHead{pos: e.Position, id: e.EventID.String()}
	}
	timeout := time.NewTimer(r.opts.AckTimeout)
	defer timeout.Stop()
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
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
