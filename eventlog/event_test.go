package eventlog_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
)

func TestEventJSONRoundTripKeepsThePosition(t *testing.T) {
	st, err := eventlog.NewStreamID("vm", uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	e := eventlog.Event{
		Position:      eventlog.Position{TransactionID: 18446744073709551000, GlobalPosition: 42},
		EventID:       uuid.New(),
		Stream:        st,
		StreamVersion: 7,
		Type:          "vm_started",
		SchemaVersion: 2,
		TenantID:      uuid.New(),
		ActorID:       uuid.New(),
		CorrelationID: uuid.New(),
		CausationID:   uuid.New(),
		Data:          json.RawMessage(`{"node":"pve1"}`),
		Metadata:      eventlog.Metadata{RequestID: "req-1", ClientIP: "192.0.2.7"},
		RecordedAt:    time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC),
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	// The wire form flattens the position into two top-level fields.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	if string(fields["position"]) != "42" || string(fields["transaction_id"]) != "18446744073709551000" ||
		string(fields["stream_id"]) != `"`+st.String()+`"` {
		t.Fatalf("wire form %s: want position 42, transaction_id and stream_id as a string", b)
	}
	if _, nested := fields["Position"]; nested {
		t.Fatalf("wire form %s carries a nested Position", b)
	}
	var back eventlog.Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, e) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, e)
	}
}

func TestPositionOrderIsTransactionThenGlobalPosition(t *testing.T) {
	a := eventlog.Position{TransactionID: 9, GlobalPosition: 100}
	b := eventlog.Position{TransactionID: 10, GlobalPosition: 5}
	c := eventlog.Position{TransactionID: 10, GlobalPosition: 6}
	if !a.Less(b) || !b.Less(c) || !eventlog.Start.Less(a) {
		t.Fatal("positions out of (transaction id, global position) order")
	}
	if b.Less(a) || c.Less(b) || c.Less(c) {
		t.Fatal("Less is not a strict order")
	}
}
