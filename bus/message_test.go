package bus_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// sampleEvent is a fully populated event at position (tx 812, gp 42).
func sampleEvent(t *testing.T) eventlog.Event {
	t.Helper()
	st, err := eventlog.NewStreamID("vm", uuid.MustParse("0190f3c2-0000-7000-8000-0000000000aa"))
	if err != nil {
		t.Fatal(err)
	}
	return eventlog.Event{
		Position:      eventlog.Position{TransactionID: 812, GlobalPosition: 42},
		EventID:       uuid.MustParse("0190f3c2-0000-7000-8000-0000000000ee"),
		Stream:        st,
		StreamVersion: 3,
		Type:          "vm_started",
		SchemaVersion: 1,
		TenantID:      uuid.MustParse("0190f3c2-0000-7000-8000-000000000001"),
		CorrelationID: uuid.MustParse("0190f3c2-0000-7000-8000-0000000000cc"),
		Data:          json.RawMessage(`{"node":"pve1"}`),
		RecordedAt:    time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

// The subjects and header names are the wire contract with every subscriber
// already deployed: they are pinned here byte for byte.
func TestSubjectAndHeadersAreTheWireContract(t *testing.T) {
	e := sampleEvent(t)
	if got, want := bus.Subject(e), "accountdb.events.0190f3c2-0000-7000-8000-000000000001.vm.vm_started"; got != want {
		t.Fatalf("subject %s, want %s", got, want)
	}
	if got := bus.SubjectEventType(bus.Subject(e)); got != e.Type {
		t.Fatalf("event type of the subject: %q, want %q", got, e.Type)
	}
	for _, s := range []string{"accountdb.events.t.vm", "accountdb.events.t.vm.x.y", "other.t.vm.vm_started", ""} {
		if got := bus.SubjectEventType(s); got != "" {
			t.Fatalf("event type of %q: %q, want none", s, got)
		}
	}
	msg, err := bus.NewMessage(e, eventlog.Position{TransactionID: 811, GlobalPosition: 40}, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Nats-Msg-Id":                   "0190f3c2-0000-7000-8000-0000000000ee",
		"Nats-Expected-Last-Sequence":   "7",
		"Accountdb-Position":            "42",
		"Accountdb-Transaction-Id":      "812",
		"Accountdb-Prev-Position":       "40",
		"Accountdb-Prev-Transaction-Id": "811",
	}
	if len(msg.Header) != len(want) {
		t.Fatalf("headers %v, want exactly %v", msg.Header, want)
	}
	for k, v := range want {
		if got := msg.Header[k]; len(got) != 1 || got[0] != v {
			t.Fatalf("header %s = %q, want [%q]", k, got, v)
		}
	}
	if msg.Subject != bus.Subject(e) {
		t.Fatalf("message subject %s, want %s", msg.Subject, bus.Subject(e))
	}
}

func TestFirstMessageExpectsAnEmptyStream(t *testing.T) {
	msg, err := bus.NewMessage(sampleEvent(t), eventlog.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v := msg.Header.Get(jetstream.ExpectedLastSeqHeader); v != "0" {
		t.Fatalf("first message expects last sequence %q, want 0", v)
	}
	if v, ok := msg.Header[jetstream.ExpectedLastMsgIDHeader]; ok {
		t.Fatalf("message expects last id %q: replicas filled by catch-up refuse that header", v)
	}
	pos, prev, err := bus.MessagePositions(msg.Header)
	if err != nil || prev != eventlog.Start || pos.GlobalPosition != 42 {
		t.Fatalf("positions %v prev %v err %v, want 42 after Start", pos, prev, err)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	e := sampleEvent(t)
	prev := eventlog.Position{TransactionID: 811, GlobalPosition: 40}
	msg, err := bus.NewMessage(e, prev, 0)
	if err != nil {
		t.Fatal(err)
	}
	pos, gotPrev, err := bus.MessagePositions(msg.Header)
	if err != nil {
		t.Fatal(err)
	}
	if pos != e.Position || gotPrev != prev {
		t.Fatalf("positions %v prev %v, want %v prev %v", pos, gotPrev, e.Position, prev)
	}
	got, err := bus.DecodeMessage(msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Data, e.Data) {
		t.Fatalf("data %s, want %s", got.Data, e.Data)
	}
	got.Data, e.Data = nil, nil
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("decoded %+v, want %+v", got, e)
	}
}

func TestMessagePositionsRejectsWhatTheRelayNeverSends(t *testing.T) {
	valid := func() nats.Header {
		return nats.Header{
			bus.HeaderPosition: {"42"}, bus.HeaderTransactionID: {"812"},
			bus.HeaderPrevPosition: {"40"}, bus.HeaderPrevTransactionID: {"811"},
		}
	}
	if _, _, err := bus.MessagePositions(valid()); err != nil {
		t.Fatalf("valid headers rejected: %v", err)
	}
	cases := map[string]func(nats.Header){
		"no headers":          func(h nats.Header) { clear(h) },
		"no position":         func(h nats.Header) { h.Del(bus.HeaderPosition) },
		"negative position":   func(h nats.Header) { h.Set(bus.HeaderPosition, "-1") },
		"bad transaction id":  func(h nats.Header) { h.Set(bus.HeaderTransactionID, "x") },
		"no prev transaction": func(h nats.Header) { h.Del(bus.HeaderPrevTransactionID) },
		"prev not before":     func(h nats.Header) { h.Set(bus.HeaderPrevTransactionID, "812"); h.Set(bus.HeaderPrevPosition, "42") },
		"prev after":          func(h nats.Header) { h.Set(bus.HeaderPrevTransactionID, "900") },
	}
	for name, spoil := range cases {
		h := valid()
		spoil(h)
		if _, _, err := bus.MessagePositions(h); !errors.Is(err, bus.ErrInvalidMessage) {
			t.Errorf("%s: error %v, want ErrInvalidMessage", name, err)
		}
	}
}

func TestDecodeMessageRejectsNonEvents(t *testing.T) {
	for name, payload := range map[string]string{
		"not json":    `{"type":`,
		"wrong types": `{"type":1}`,
		"no position": `{"event_id":"0190f3c2-0000-7000-8000-0000000000ee","type":"vm_started"}`,
		"no id":       `{"position":42,"type":"vm_started"}`,
		"no type":     `{"position":42,"event_id":"0190f3c2-0000-7000-8000-0000000000ee"}`,
	} {
		if _, err := bus.DecodeMessage([]byte(payload)); !errors.Is(err, bus.ErrInvalidMessage) {
			t.Errorf("%s: error %v, want ErrInvalidMessage", name, err)
		}
	}
}
