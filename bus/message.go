package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers the relay sets on every message, besides Nats-Msg-Id (the event id).
// The prev pair is the log position of the event the relay published just
// before this one (both 0 for the first event of the log), so a consumer can
// tell a gap from a duplicate without asking the event store.
const (
	HeaderPosition          = "Accountdb-Position"
	HeaderTransactionID     = "Accountdb-Transaction-Id"
	HeaderPrevPosition      = "Accountdb-Prev-Position"
	HeaderPrevTransactionID = "Accountdb-Prev-Transaction-Id"
)

// ErrInvalidMessage is returned for a bus message that is not a relayed event.
var ErrInvalidMessage = errors.New("bus: invalid event message")

// NewMessage is the message the relay publishes for e; prev is the log
// position of the event published before it and lastSeq the stream sequence
// of that event's message (0 for an empty stream). lastSeq is sent as
// Nats-Expected-Last-Sequence, so JetStream itself refuses to store e unless
// the stream's last message is its predecessor: a message lost in a
// reconnect can then never let a later one overtake it.
//
// Not Nats-Expected-Last-Msg-Id, which the relay used to send: every replica
// of a clustered stream checks that header again when it applies the
// message, against the id of the last message it stored through the
// replication log, and a replica filled by catch-up (a stream moved to more
// replicas, a node back from an outage) does not know that id. Such a
// replica fails with "critical write error: last msgid mismatch" and drops
// out, and with two of three out the stream has no quorum: the relay could
// not publish again (relay/replicas_test.go reproduces it). The expected
// sequence is checked once, by the stream's leader, before replication.
func NewMessage(e eventlog.Event, prev eventlog.Position, lastSeq uint64) (*nats.Msg, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.EventID, err)
	}
	h := make(nats.Header, 7)
	h[jetstream.MsgIDHeader] = []string{e.EventID.String()}
	h[HeaderPosition] = []string{strconv.FormatInt(e.Position.GlobalPosition, 10)}
	h[HeaderTransactionID] = []string{strconv.FormatUint(e.Position.TransactionID, 10)}
	h[HeaderPrevPosition] = []string{strconv.FormatInt(prev.GlobalPosition, 10)}
	h[HeaderPrevTransactionID] = []string{strconv.FormatUint(prev.TransactionID, 10)}
	h[jetstream.ExpectedLastSeqHeader] = []string{strconv.FormatUint(lastSeq, 10)}
	return &nats.Msg{Subject: Subject(e), Header: h, Data: data}, nil
}

// MessagePositions reads a relayed message's log position and the position
// of the event published before it (Start for the first event of the log).
// A consumer that has applied everything up to prev applies this message; one
// that has applied pos or later skips it; anything else is a gap.
func MessagePositions(h nats.Header) (pos, prev eventlog.Position, err error) {
	if pos, err = headerPosition(h, HeaderTransactionID, HeaderPosition); err != nil {
		return eventlog.Position{}, eventlog.Position{}, err
	}
	if prev, err = headerPosition(h, HeaderPrevTransactionID, HeaderPrevPosition); err != nil {
		return eventlog.Position{}, eventlog.Position{}, err
	}
	if !prev.Less(pos) {
		return eventlog.Position{}, eventlog.Position{}, fmt.Errorf("%w: previous position %v is not before %v", ErrInvalidMessage, prev, pos)
	}
	return pos, prev, nil
}

func headerPosition(h nats.Header, txKey, posKey string) (eventlog.Position, error) {
	tx, err := strconv.ParseUint(h.Get(txKey), 10, 64)
	if err != nil {
		return eventlog.Position{}, fmt.Errorf("%w: header %s: %q", ErrInvalidMessage, txKey, eventlog.Excerpt(h.Get(txKey)))
	}
	gp, err := strconv.ParseInt(h.Get(posKey), 10, 64)
	if err != nil || gp < 0 {
		return eventlog.Position{}, fmt.Errorf("%w: header %s: %q", ErrInvalidMessage, posKey, eventlog.Excerpt(h.Get(posKey)))
	}
	return eventlog.Position{TransactionID: tx, GlobalPosition: gp}, nil
}

// DecodeMessage reads the event envelope of a relayed message's payload.
func DecodeMessage(data []byte) (eventlog.Event, error) {
	var e eventlog.Event
	if err := json.Unmarshal(data, &e); err != nil {
		return eventlog.Event{}, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	// Every recorded event is on a stream; without stream_id the envelope
	// would decode to the zero StreamID, which NewMessage cannot publish back
	// (found by FuzzDecodeMessage).
	if e.Position.GlobalPosition <= 0 || e.EventID == uuid.Nil || e.Type == "" || e.Stream.Type == "" || e.Stream.ID == uuid.Nil {
		return eventlog.Event{}, fmt.Errorf("%w: no position, id, type or stream", ErrInvalidMessage)
	}
	return e, nil
}
