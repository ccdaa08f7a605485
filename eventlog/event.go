// Package eventlog holds the record types of AccountDB's event log: the
// envelope of one recorded event, the id of the stream it belongs to and its
// position in commit order. They are shared by the PostgreSQL store
// (eventstore), the bus contract (bus) and every reader (projectors, the agent,
// the API), so this package imports no database or bus code.
package eventlog

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Event is the envelope of one recorded event, as stored and as published on
// the bus. Its JSON form is the wire format subscribers decode.
type Event struct {
	Position      Position        `json:"-"`
	EventID       uuid.UUID       `json:"event_id"`
	Stream        StreamID        `json:"stream_id"`
	StreamVersion int64           `json:"stream_version"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	TenantID      uuid.UUID       `json:"tenant_id"`
	ActorID       uuid.UUID       `json:"actor_id"`
	CorrelationID uuid.UUID       `json:"correlation_id"`
	CausationID   uuid.UUID       `json:"causation_id"`
	Data          json.RawMessage `json:"data"`
	Metadata      Metadata        `json:"metadata"`
	RecordedAt    time.Time       `json:"recorded_at"`
}

// Metadata records where a command came from. It never holds secrets.
type Metadata struct {
	RequestID string `json:"request_id,omitempty"`
	ClientIP  string `json:"client_ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	// APITokenID is the API token the request was authenticated with
	// (absent for a session's access token).
	APITokenID string `json:"api_token_id,omitempty"`
}

// Position is an event's place in the log's commit order. Readers order by
// (TransactionID, GlobalPosition): global positions are handed out when a row
// is inserted, not when it commits, so on their own they are not commit order.
// TransactionID is PostgreSQL's xid8 of the appending transaction.
type Position struct {
	TransactionID  uint64 `json:"transaction_id"`
	GlobalPosition int64  `json:"global_position"`
}

// Start is the position before the first event.
var Start = Position{}

// Less reports whether p comes before q in the log.
func (p Position) Less(q Position) bool {
	if p.TransactionID != q.TransactionID {
		return p.TransactionID < q.TransactionID
	}
	return p.GlobalPosition < q.GlobalPosition
}

// MarshalJSON writes the envelope with its position fields flattened in.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event // drops the methods, so no recursion
	return json.Marshal(struct {
		GlobalPosition int64  `json:"position"`
		TransactionID  uint64 `json:"transaction_id"`
		plain
	}{e.Position.GlobalPosition, e.Position.TransactionID, plain(e)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	var w struct {
		GlobalPosition int64  `json:"position"`
		TransactionID  uint64 `json:"transaction_id"`
		plain
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = Event(w.plain)
	e.Position = Position{TransactionID: w.TransactionID, GlobalPosition: w.GlobalPosition}
	return nil
}
