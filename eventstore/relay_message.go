package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/accountdb/accountdb/internal/jetstreams"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The bus side of the log: one JetStream stream holds every event the relay
// publishes, one message per event, in log order.
const (
	StreamName    = "ACCOUNTDB_EVENTS"
	SubjectPrefix = "accountdb.events."
	// StreamSubjects is the stream's subject filter.
	StreamSubjects = SubjectPrefix + ">"
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id, which is
	// what makes a relay retry of an already stored event a no-op.
	DuplicateWindow = 2 * time.Minute
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
var ErrInvalidMessage = errors.New("eventstore: invalid event message")

// Subject is where e is published:
// accountdb.events.<tenant_id>.<stream_type>.<event_type>. Stream and event
// types are lower-case identifiers and tenant ids are UUIDs, so every token is
// a valid, wildcard-free subject token.
func Subject(e Event) string {
	return SubjectPrefix + e.TenantID.String() + "." + e.Stream.Type + "." + e.Type
}

// EnsureStream creates the ACCOUNTDB_EVENTS stream, or updates its
// configuration to the one the relay relies on: file storage, kept until
// removed by an operator, duplicates remembered for DuplicateWindow.
func EnsureStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	s, err := jetstreams.Ensure(ctx, js, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "AccountDB events, relayed in log order from the PostgreSQL event store",
		Subjects:    []string{StreamSubjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Duplicates:  DuplicateWindow,
		AllowDirect: true,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// newMessage is the message for e; prev is the log position of the event
// published before it and prevID that event's id. A non-nil prevID is also
// sent as Nats-Expected-Last-Msg-Id, so JetStream itself refuses to store e
// unless the stream's last message is its predecessor: a message lost in a
// reconnect can then never let a later one overtake it.
func newMessage(e Event, prev Position, prevID string) (*nats.Msg, error) {
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
	if prevID != "" {
		h[jetstream.ExpectedLastMsgIDHeader] = []string{prevID}
	}
	return &nats.Msg{Subject: Subject(e), Header: h, Data: data}, nil
}

// MessagePositions reads a relayed message's log position and the position
// of the event published before it (Start for the first event of the log).
// A consumer that has applied everything up to prev applies this message; one
// that has applied pos or later skips it; anything else is a gap.
func MessagePositions(h nats.Header) (pos, prev Position, err error) {
	if pos, err = headerPosition(h, HeaderTransactionID, HeaderPosition); err != nil {
		return Position{}, Position{}, err
	}
	if prev, err = headerPosition(h, HeaderPrevTransactionID, HeaderPrevPosition); err != nil {
		return Position{}, Position{}, err
	}
	if !prev.Less(pos) {
		return Position{}, Position{}, fmt.Errorf("%w: previous position %v is not before %v", ErrInvalidMessage, prev, pos)
	}
	return pos, prev, nil
}

func headerPosition(h nats.Header, txKey, posKey string) (Position, error) {
	tx, err := strconv.ParseUint(h.Get(txKey), 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("%w: header %s: %q", ErrInvalidMessage, txKey, truncate(h.Get(txKey)))
	}
	gp, err := strconv.ParseInt(h.Get(posKey), 10, 64)
	if err != nil || gp < 0 {
		return Position{}, fmt.Errorf("%w: header %s: %q", ErrInvalidMessage, posKey, truncate(h.Get(posKey)))
	}
	return Position{TransactionID: tx, GlobalPosition: gp}, nil
}

// DecodeMessage reads the event envelope of a relayed message's payload.
func DecodeMessage(data []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	if e.Position.GlobalPosition <= 0 || e.EventID == uuid.Nil || e.Type == "" {
		return Event{}, fmt.Errorf("%w: no position, id or type", ErrInvalidMessage)
	}
	return e, nil
}
