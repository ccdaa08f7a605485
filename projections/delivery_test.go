package projections

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// testMsg is a relayed message as a consumer receives it.
type testMsg struct {
	jetstream.Msg
	m *nats.Msg
}

func (t testMsg) Subject() string      { return t.m.Subject }
func (t testMsg) Headers() nats.Header { return t.m.Header }
func (t testMsg) Data() []byte         { return t.m.Data }

// TestDecodeLeavesIgnoredTypesUndecoded: an event of a type the projector
// does not react to is passed by its headers alone (its payload is not
// even read: here it is not JSON), with the position and type the chain
// and applyReplayed need; one it reacts to is decoded and checked.
func TestDecodeLeavesIgnoredTypesUndecoded(t *testing.T) {
	st, err := eventlog.NewStreamID("vm", uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	e := eventlog.Event{Position: eventlog.Position{TransactionID: 9, GlobalPosition: 7}, EventID: uuid.New(), Stream: st,
		StreamVersion: 1, Type: "vm_started", SchemaVersion: 1, TenantID: uuid.New(), Data: json.RawMessage(`{}`), RecordedAt: time.Now()}
	prev := eventlog.Position{TransactionID: 8, GlobalPosition: 6}
	m, err := bus.NewMessage(e, prev, 0)
	if err != nil {
		t.Fatal(err)
	}
	reactsToVMs := func(t string) bool { return t == "vm_started" }
	if d := decode(testMsg{m: m}, reactsToVMs); d.err != nil || d.ignored || d.event.EventID != e.EventID || d.prev != prev {
		t.Fatalf("an event it reacts to: %+v", d)
	}
	m.Data = []byte("not JSON")
	d := decode(testMsg{m: m}, func(string) bool { return false })
	if d.err != nil || !d.ignored || d.event.Position != e.Position || d.event.Type != e.Type || d.prev != prev {
		t.Fatalf("an event it ignores: %+v", d)
	}
	if d := decode(testMsg{m: m}, reactsToVMs); d.err == nil {
		t.Fatal("an undecodable event it reacts to was not held back")
	}
}
