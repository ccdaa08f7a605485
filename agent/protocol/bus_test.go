package protocol

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/accountdb/accountdb/internal/natstest"
)

func TestEnsureStreamAndResultDedupe(t *testing.T) {
	ns := natstest.Start(t)
	nc, err := nats.Connect(ns.URL(), ns.CoreOptions(t)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := EnsureStream(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureStream(ctx, js); err != nil {
		t.Fatalf("second EnsureStream: %v", err)
	}
	cfg := s.CachedInfo().Config
	if cfg.Name != StreamName || len(cfg.Subjects) != 1 || cfg.Subjects[0] != "accountdb.agent.>" || cfg.Storage != jetstream.FileStorage || cfg.Duplicates != 2*time.Minute {
		t.Fatalf("stream config %+v", cfg)
	}

	// Results are the agent's to publish: its credentials allow it.
	_, agentJS := ns.JetStream(t, natsauth.Agent())
	r := Result{RequestEventID: uuid.New(), CorrelationID: uuid.New(), TenantID: uuid.New(), VMID: uuid.New(), Action: "start", Succeeded: true, FinishedAt: time.Now().UTC()}
	for range 2 {
		m, err := NewResultMsg(r)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != "accountdb.agent.results."+r.TenantID.String() || m.Header.Get(jetstream.MsgIDHeader) != "result-"+r.RequestEventID.String() || MessageKind(m.Header) != KindResult {
			t.Fatalf("message %s %v", m.Subject, m.Header)
		}
		if _, err := agentJS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("%d messages stored for one result published twice", info.State.Msgs)
	}
	raw, err := s.GetLastMsgForSubject(ctx, ResultSubject(r.TenantID))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeResult(raw.Data)
	if err != nil || got.RequestEventID != r.RequestEventID || !got.Succeeded || got.Action != "start" {
		t.Fatalf("decoded %+v, %v", got, err)
	}
}

func TestMessagesAndTags(t *testing.T) {
	t.Parallel()
	if _, err := NewResultMsg(Result{}); err == nil {
		t.Fatal("empty result accepted")
	}
	cluster := uuid.New()
	m, err := NewObservationMsg(Observation{ClusterID: cluster})
	if err != nil || m.Subject != ObservationSubject(cluster) || MessageKind(m.Header) != KindObservation {
		t.Fatalf("observation %v %v", m, err)
	}
	if o, err := DecodeObservation(m.Data); err != nil || o.Guests == nil {
		t.Fatalf("decoded observation %+v %v", o, err)
	}
	m, err = NewInventoryMsg(Inventory{ClusterID: cluster})
	if err != nil || m.Subject != InventorySubject(cluster) || MessageKind(m.Header) != KindInventory {
		t.Fatalf("inventory %v %v", m, err)
	}
	if _, err := DecodeInventory([]byte(`{}`)); err == nil {
		t.Fatal("inventory without cluster accepted")
	}
	vm := uuid.New()
	if id, ok := ParseVMTag(VMTag(vm)); !ok || id != vm {
		t.Fatal("VM tag round trip")
	}
	if _, ok := ParseVMTag(TenantTag(vm)); ok {
		t.Fatal("tenant tag read as a VM tag")
	}
	if id, ok := ParseTenantTag(TenantTag(vm)); !ok || id != vm {
		t.Fatal("tenant tag round trip")
	}
	if tags := SplitTags("a;b,c d"); len(tags) != 4 {
		t.Fatalf("split %v", tags)
	}
}
