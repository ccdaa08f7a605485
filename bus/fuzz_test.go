package bus_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// FuzzDecodeMessage: whatever a relayed message holds, DecodeMessage
// answers an event with a position, id and type, or ErrInvalidMessage; an
// accepted event survives NewMessage and DecodeMessage unchanged.
func FuzzDecodeMessage(f *testing.F) {
	good, err := json.Marshal(eventlog.Event{Position: eventlog.Position{TransactionID: 7, GlobalPosition: 9}, EventID: uuid.New(),
		Stream: eventlog.StreamID{Type: "vm", ID: uuid.New()}, StreamVersion: 1, Type: "vm_created", TenantID: uuid.New(),
		Data: json.RawMessage(`{"name":"a"}`), Metadata: eventlog.Metadata{ClientIP: "192.0.2.1"}})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{string(good), `{}`, `null`, `{"global_position":-1}`, `{"stream_id":"nope"}`, `{"data":}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := bus.DecodeMessage(data)
		if err != nil {
			if !errors.Is(err, bus.ErrInvalidMessage) {
				t.Fatalf("%q: %v, want ErrInvalidMessage", data, err)
			}
			return
		}
		if e.Position.GlobalPosition <= 0 || e.EventID == uuid.Nil || e.Type == "" {
			t.Fatalf("%q accepted as %+v", data, e)
		}
		m, err := bus.NewMessage(e, eventlog.Position{}, 0)
		if err != nil {
			return // e.g. data that is not valid JSON on its own: never published
		}
		again, err := bus.DecodeMessage(m.Data)
		if err != nil {
			t.Fatalf("%q re-encoded as %q, refused: %v", data, m.Data, err)
		}
		a, _ := json.Marshal(e)
		b, _ := json.Marshal(again)
		if string(a) != string(b) {
			t.Fatalf("%q changed on the way: %s then %s", data, a, b)
		}
	})
}

// FuzzMessagePositions: the position headers of a relayed message are
// read as two positions, the previous one before the message's, or refused.
func FuzzMessagePositions(f *testing.F) {
	f.Add("7", "9", "6", "8")
	f.Add("0", "1", "0", "0")
	f.Add("x", "-1", "", "18446744073709551616")
	f.Fuzz(func(t *testing.T, tx, pos, prevTx, prevPos string) {
		h := nats.Header{}
		h.Set(bus.HeaderTransactionID, tx)
		h.Set(bus.HeaderPosition, pos)
		h.Set(bus.HeaderPrevTransactionID, prevTx)
		h.Set(bus.HeaderPrevPosition, prevPos)
		at, prev, err := bus.MessagePositions(h)
		if err != nil {
			if !errors.Is(err, bus.ErrInvalidMessage) {
				t.Fatalf("%v: %v, want ErrInvalidMessage", h, err)
			}
			return
		}
		if !prev.Less(at) {
			t.Fatalf("%v: previous %v not before %v", h, prev, at)
		}
	})
}
