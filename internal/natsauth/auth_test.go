package natsauth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent"
	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/accountdb/accountdb/internal/natstest"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// violations collects the permission violations the server reports to a
// connection.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler() nats.Option {
	return nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			v.mu.Lock()
			v.errs = append(v.errs, err.Error())
			v.mu.Unlock()
		}
	})
}

// waitFor fails the test unless a violation naming subject is reported.
func (v *violations) waitFor(t *testing.T, subject string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		v.mu.Lock()
		for _, e := range v.errs {
			if strings.Contains(e, subject) {
				v.mu.Unlock()
				return
			}
		}
		v.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no permissions violation reported for %s (reported: %v)", subject, v.errs)
}

func short(t *testing.T) context.Context { return within(t, 5*time.Second) }

// refused is the context of a request the server is expected to refuse:
// a refused request is dropped by the server, so the client only times out.
func refused(t *testing.T) context.Context { return within(t, 300*time.Millisecond) }

func within(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// bed is a server with ACCOUNTDB_EVENTS holding one event of each of two
// tenants and a cluster registration, published as the core.
type bed struct {
	ns           *natstest.Server
	core         jetstream.JetStream
	tenantA      uuid.UUID
	tenantB      uuid.UUID
	eventsStream jetstream.Stream
}

func newBed(t *testing.T) *bed {
	t.Helper()
	b := &bed{ns: natstest.Start(t), tenantA: uuid.New(), tenantB: uuid.New()}
	_, b.core = b.ns.JetStream(t, natsauth.Core())
	ctx := short(t)
	var err error
	if b.eventsStream, err = bus.EnsureStream(ctx, b.core); err != nil {
		t.Fatalf("the core creates ACCOUNTDB_EVENTS: %v", err)
	}
	for _, subj := range []string{
		bus.SubjectPrefix + b.tenantA.String() + ".vm.vm_created",
		bus.SubjectPrefix + b.tenantB.String() + ".vm.vm_created",
		bus.SubjectPrefix + uuid.Nil.String() + ".cluster.cluster_registered",
	} {
		if _, err := b.core.Publish(ctx, subj, []byte(`{}`)); err != nil {
			t.Fatalf("the core publishes %s: %v", subj, err)
		}
	}
	return b
}

func (b *bed) count(t *testing.T) uint64 {
	t.Helper()
	info, err := b.eventsStream.Info(short(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestAnonymousConnectionRefused(t *testing.T) {
	ns := natstest.Start(t)
	nc, err := nats.Connect(ns.URL(), nats.MaxReconnects(0))
	if err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected")
	}
	if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("anonymous connect: want an authorization error, got %v", err)
	}
	// A user signed by another account key is refused as well.
	other, err := natsauth.Generate()
	if err != nil {
		t.Fatal(err)
	}
	opts, err := other.ConnectOptions(natsauth.Core())
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(ns.URL(), append(opts, nats.MaxReconnects(0))...); err == nil {
		nc.Close()
		t.Fatal("a user signed by a foreign account key connected")
	}
}

func TestCoreManagesStreamsAndPublishes(t *testing.T) {
	b := newBed(t)
	if n := b.count(t); n != 3 {
		t.Fatalf("ACCOUNTDB_EVENTS holds %d messages, want 3", n)
	}
	ctx := short(t)
	if _, err := protocol.EnsureStream(ctx, b.core); err != nil {
		t.Fatalf("the core creates ACCOUNTDB_AGENT: %v", err)
	}
	if err := b.core.DeleteStream(ctx, protocol.StreamName); err != nil {
		t.Fatalf("the core deletes a stream: %v", err)
	}
}

func TestAgentCannotPublishEventsNorManageTheEventStream(t *testing.T) {
	b := newBed(t)
	var v violations
	nc, js := b.ns.JetStream(t, natsauth.Agent(), v.handler())

	forged := bus.SubjectPrefix + uuid.Nil.String() + ".cluster.cluster_registered"
	if _, err := js.Publish(refused(t), forged, []byte(`{"api_url":"https://attacker.example"}`)); err == nil {
		t.Fatal("the agent published a cluster registration")
	}
	v.waitFor(t, forged)
	if err := nc.Publish(bus.SubjectPrefix+uuid.New().String()+".vm.vm_create_requested", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	v.waitFor(t, ".vm.vm_create_requested")

	if err := js.DeleteStream(refused(t), bus.StreamName); err == nil {
		t.Fatal("the agent deleted ACCOUNTDB_EVENTS")
	}
	v.waitFor(t, "$JS.API.STREAM.DELETE."+bus.StreamName)
	if _, err := js.UpdateStream(refused(t), jetstream.StreamConfig{Name: bus.StreamName, Subjects: []string{">"}}); err == nil {
		t.Fatal("the agent reconfigured ACCOUNTDB_EVENTS")
	}
	if err := nc.Publish("$JS.API.STREAM.PURGE."+bus.StreamName, nil); err != nil {
		t.Fatal(err)
	}
	v.waitFor(t, "$JS.API.STREAM.PURGE."+bus.StreamName)
	if n := b.count(t); n != 3 {
		t.Fatalf("ACCOUNTDB_EVENTS holds %d messages after the agent's attempts, want 3", n)
	}

	// What the agent is for still works: its own stream and its lease bucket.
	ctx := short(t)
	if _, err := protocol.EnsureStream(ctx, js); err != nil {
		t.Fatalf("the agent creates ACCOUNTDB_AGENT: %v", err)
	}
	if _, err := js.Publish(ctx, protocol.ResultSubject(b.tenantA), []byte(`{}`)); err != nil {
		t.Fatalf("the agent publishes a result: %v", err)
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: agent.LeaseBucket})
	if err != nil {
		t.Fatalf("the agent creates its lease bucket: %v", err)
	}
	if _, err := kv.Put(ctx, "leader", []byte("me")); err != nil {
		t.Fatalf("the agent writes its lease: %v", err)
	}
	if _, err := js.CreateKeyValue(refused(t), jetstream.KeyValueConfig{Bucket: "OTHER"}); err == nil {
		t.Fatal("the agent created another bucket")
	}
}

func TestSubscriberReadsOnlyItsTenant(t *testing.T) {
	b := newBed(t)
	var v violations
	sub := natsauth.Subscriber(b.tenantA, "billing", time.Now().Add(time.Hour))
	nc, js := b.ns.JetStream(t, sub, v.handler())

	ctx := short(t)
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.StreamName, jetstream.ConsumerConfig{
		Durable: sub.ConsumerName(), FilterSubject: sub.FilterSubject(), AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("the subscriber creates its consumer: %v", err)
	}
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, m.Subject())
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], bus.SubjectPrefix+b.tenantA.String()+".") {
		t.Fatalf("the subscriber read %v, want its tenant's one event", got)
	}

	// Another tenant's subjects, all subjects, another consumer's name.
	for _, cfg := range []jetstream.ConsumerConfig{
		{Durable: sub.ConsumerName(), FilterSubject: bus.SubjectPrefix + b.tenantB.String() + ".>"},
		{Durable: sub.ConsumerName(), FilterSubject: bus.StreamSubjects},
		{Durable: sub.ConsumerName()},
		{Durable: sub.ConsumerName(), FilterSubjects: []string{sub.FilterSubject(), bus.SubjectPrefix + b.tenantB.String() + ".>"}},
		{Durable: natsauth.Subscriber(b.tenantB, "billing", time.Time{}).ConsumerName(), FilterSubject: sub.FilterSubject()},
	} {
		if _, err := js.CreateOrUpdateConsumer(refused(t), bus.StreamName, cfg); err == nil {
			t.Fatalf("the subscriber created or changed a consumer %+v", cfg)
		}
	}
	// The core's and the agent's consumers exist; the subscriber cannot pull them.
	if _, err := b.core.CreateOrUpdateConsumer(short(t), bus.StreamName, jetstream.ConsumerConfig{Durable: agent.ConsumerName}); err != nil {
		t.Fatal(err)
	}
	next := "$JS.API.CONSUMER.MSG.NEXT." + bus.StreamName + "." + agent.ConsumerName
	if err := nc.PublishRequest(next, sub.InboxPrefix()+".x", []byte(`{"batch":1}`)); err != nil {
		t.Fatal(err)
	}
	v.waitFor(t, next)
	// No stream management, no direct reads, no other inboxes, no publishing.
	if err := js.DeleteStream(refused(t), bus.StreamName); err == nil {
		t.Fatal("the subscriber deleted ACCOUNTDB_EVENTS")
	}
	if _, err := js.Stream(refused(t), bus.StreamName); err == nil {
		t.Fatal("the subscriber read the stream's info (its subjects name every tenant)")
	}
	if _, err := nc.Subscribe("_INBOX_core.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	v.waitFor(t, "_INBOX_core.>")
	forged := bus.SubjectPrefix + uuid.Nil.String() + ".cluster.cluster_registered"
	if err := nc.Publish(forged, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	v.waitFor(t, forged)
	if n := b.count(t); n != 3 {
		t.Fatalf("ACCOUNTDB_EVENTS holds %d messages, want 3", n)
	}
}

func TestExpiredSubscriberRefused(t *testing.T) {
	ns := natstest.Start(t)
	opts, err := ns.Keys.ConnectOptions(natsauth.Subscriber(uuid.New(), "old", time.Now().Add(-time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(ns.URL(), append(opts, nats.MaxReconnects(0))...); err == nil {
		nc.Close()
		t.Fatal("an expired credential connected")
	}
}

// The permissions spell the agent's names; they must be the agent's.
func TestPermissionsNameTheAgentsContract(t *testing.T) {
	perms := natsauth.Agent().Permissions()
	joined := strings.Join(perms.Pub.Allow, " ")
	for _, want := range []string{protocol.StreamSubjects, "." + protocol.StreamName + " ", "." + bus.StreamName + "." + agent.ConsumerName + " ", "$KV." + agent.LeaseBucket + ".>"} {
		if !strings.Contains(joined+" ", want) {
			t.Errorf("the agent's permissions do not mention %q: %s", want, joined)
		}
	}
}
