package projections

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/accountdb/accountdb/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers the relay sets on every message. The prev pair is the log position
// of the event published immediately before this one (0/0 for the first): it
// chains the messages, so a projector can tell the next event from a later one
// that JetStream redelivered early.
const (
	headerPosition          = "Accountdb-Position"
	headerTransactionID     = "Accountdb-Transaction-Id"
	headerPrevPosition      = "Accountdb-Prev-Position"
	headerPrevTransactionID = "Accountdb-Prev-Transaction-Id"
)

// delivery is one message with its event decoded, or the reason it could not be.
type delivery struct {
	msg   jetstream.Msg
	event eventstore.Event
	prev  eventstore.Position
	err   error
}

func decode(msg jetstream.Msg) delivery {
	d := delivery{msg: msg}
	if err := json.Unmarshal(msg.Data(), &d.event); err != nil {
		d.err = fmt.Errorf("decode event: %w", err)
		return d
	}
	h := msg.Headers()
	var err error
	if d.prev, err = headerPositionPair(h.Get(headerPrevTransactionID), h.Get(headerPrevPosition)); err != nil {
		d.err = fmt.Errorf("prev position: %w", err)
		return d
	}
	// The headers, when present, must agree with the payload: a message whose
	// two descriptions of itself differ is not trusted to be either event.
	if h.Get(headerPosition) != "" || h.Get(headerTransactionID) != "" {
		own, err := headerPositionPair(h.Get(headerTransactionID), h.Get(headerPosition))
		if err != nil {
			d.err = fmt.Errorf("position: %w", err)
			return d
		}
		if own != d.event.Position {
			d.err = fmt.Errorf("position headers %+v disagree with payload %+v", own, d.event.Position)
			return d
		}
	}
	// Positions strictly increase along the chain; this also keeps a malformed
	// message from chaining to itself.
	if !d.prev.Less(d.event.Position) {
		d.err = fmt.Errorf("prev position %+v is not before position %+v", d.prev, d.event.Position)
	}
	return d
}

func headerPositionPair(txid, gp string) (eventstore.Position, error) {
	t, err := strconv.ParseUint(txid, 10, 64)
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("transaction id %q: %w", txid, err)
	}
	g, err := strconv.ParseInt(gp, 10, 64)
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("global position %q: %w", gp, err)
	}
	return eventstore.Position{TransactionID: t, GlobalPosition: g}, nil
}

// batchPlan says what to do with each delivery of a batch, given the
// checkpoint cp: apply follows the chain from cp (each applied event's prev is
// the position the one before it left), done are deliveries already in the
// read model once the plan is applied (duplicates, redeliveries after a crash
// between commit and ack), later are the rest: ahead of a gap or undecodable.
type batchPlan struct {
	apply []int
	done  []int
	later []int
	to    eventstore.Position // the checkpoint after apply
}

func plan(cp eventstore.Position, ds []delivery) batchPlan {
	next := make(map[eventstore.Position]int, len(ds))
	for i, d := range ds {
		if d.err != nil || !cp.Less(d.event.Position) {
			continue
		}
		if _, dup := next[d.prev]; !dup {
			next[d.prev] = i
		}
	}
	p := batchPlan{to: cp}
	used := make([]bool, len(ds))
	for {
		i, ok := next[p.to]
		if !ok {
			break
		}
		delete(next, p.to)
		p.apply = append(p.apply, i)
		used[i] = true
		p.to = ds[i].event.Position
	}
	for i, d := range ds {
		switch {
		case used[i]:
		case d.err == nil && !p.to.Less(d.event.Position):
			p.done = append(p.done, i)
		default:
			p.later = append(p.later, i)
		}
	}
	return p
}
