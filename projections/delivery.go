package projections

import (
	"fmt"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/nats-io/nats.go/jetstream"
)

// delivery is one message with its event decoded, or the reason it could not
// be. prev is the log position of the event the relay published just before
// this one (its Accountdb-Prev-* headers): it chains the messages, so a
// projector can tell the next event from a later one delivered early.
type delivery struct {
	msg   jetstream.Msg
	event eventlog.Event
	prev  eventlog.Position
	err   error
	// ignored: an event of a type the projector does not react to, left
	// undecoded; event holds only its position and type.
	ignored bool
}

func decode(msg jetstream.Msg, reacts func(string) bool) delivery {
	d := delivery{msg: msg}
	pos, prev, err := bus.MessagePositions(msg.Headers())
	if err != nil {
		d.err = err
		return d
	}
	if t := bus.SubjectEventType(msg.Subject()); t != "" && !reacts(t) {
		// Nothing of it is applied (applyReplayed passes it by type): the
		// chain needs only its positions, which the headers carry. Decoding
		// every event's JSON in every projector's runner, for the one or two
		// that use it, was most of the runners' CPU (docs/BENCHMARKS.md,
		// figure 11).
		d.event, d.prev, d.ignored = eventlog.Event{Type: t, Position: pos}, prev, true
		return d
	}
	e, err := bus.DecodeMessage(msg.Data())
	if err != nil {
		d.err = err
		return d
	}
	// A message whose two descriptions of itself differ is not trusted to be
	// either event.
	if e.Position != pos {
		d.err = fmt.Errorf("%w: headers say position %v, payload %v", bus.ErrInvalidMessage, pos, e.Position)
		return d
	}
	d.event, d.prev = e, prev
	return d
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
	to    eventlog.Position // the checkpoint after apply
}

func plan(cp eventlog.Position, ds []delivery) batchPlan {
	next := make(map[eventlog.Position]int, len(ds))
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
