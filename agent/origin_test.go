package agent

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// forgedSubjectPrefix is where the test puts a request outside ACCOUNTDB_EVENTS.
const forgedSubjectPrefix = "accountdb.agent.forged."

// A well-formed VM request that reaches the agent from any stream but
// ACCOUNTDB_EVENTS (only the core may publish there) is terminated, not
// executed; the same event relayed onto ACCOUNTDB_EVENTS is.
func TestRequestNotFromTheEventStreamIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	ta := e.runAgent(e.js, nil, nil)
	waitUntil(t, "the agent to lead", ta.Leader)

	vm := uuid.New()
	data, err := json.Marshal(e.createReq(domain.KindQEMU, "forged", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8}))
	if err != nil {
		t.Fatal(err)
	}
	pos := e.pos.Add(1)
	ev := eventlog.Event{
		Position: eventlog.Position{TransactionID: uint64(pos), GlobalPosition: pos},
		EventID:  uuid.Must(uuid.NewV7()), Stream: eventlog.StreamID{Type: domain.StreamVM, ID: vm}, StreamVersion: 1,
		Type: domain.VMCreateRequested{}.EventType(), SchemaVersion: 1, TenantID: e.tenant, ActorID: uuid.New(),
		CorrelationID: uuid.New(), CausationID: uuid.New(), Data: data, RecordedAt: time.Now().UTC(),
	}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	// The agent's own stream is one that credentials other than the core's
	// may publish on.
	if _, err := e.js.Publish(e.ctx, forgedSubjectPrefix+"create", body); err != nil {
		t.Fatal(err)
	}
	cons, err := e.core.CreateOrUpdateConsumer(e.ctx, protocol.StreamName, jetstream.ConsumerConfig{Durable: "forged",
		FilterSubject: forgedSubjectPrefix + ">", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 2*time.Second)
	defer cancel()
	ta.consume(ctx, cons, 500*time.Millisecond, nil)

	info, err := cons.Info(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Delivered.Consumer == 0 || info.NumAckPending != 0 || info.NumRedelivered != 0 {
		t.Fatalf("the foreign message was not delivered once and terminated: %+v", info)
	}
	if r := e.resultsFor(ev); len(r) != 0 {
		t.Fatalf("the agent answered a request from another stream: %+v", r)
	}
	if g := e.tagged(vm); len(g) != 0 {
		t.Fatalf("the agent created a guest for a request from another stream: %+v", g)
	}

	e.publishEnvelope(ev, ev.EventID.String())
	e.ok(ev)
}
