package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/relay"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
)

// versionCapture is tenant_activity, noting the version and data of each
// event it is handed.
type versionCapture struct {
	TenantActivity
	mu   sync.Mutex
	seen map[int64]string // stream version → "v<schema> <data>"
}

func (c *versionCapture) Apply(ctx context.Context, tx pgx.Tx, e eventlog.Event) error {
	c.note(e)
	return c.TenantActivity.Apply(ctx, tx, e)
}

// ApplyBatch is the rebuild's path (TenantActivity is a BatchApplier): the
// events it is handed must be upcast too.
func (c *versionCapture) ApplyBatch(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, evs []eventlog.Event) error {
	for _, e := range evs {
		c.note(e)
	}
	return c.TenantActivity.ApplyBatch(ctx, tx, tenant, evs)
}

func (c *versionCapture) note(e eventlog.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[int64]string{}
	}
	var v any
	_ = json.Unmarshal(e.Data, &v)
	data, _ := json.Marshal(v)
	c.seen[e.StreamVersion] = fmt.Sprintf("v%d %s", e.SchemaVersion, data)
}

func (c *versionCapture) got() map[int64]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[int64]string{}
	for k, v := range c.seen {
		out[k] = v
	}
	return out
}

// A v1 event recorded before its type gained v2 reaches projectors as v2, live
// (the runner upcasts what the bus carries as stored) and on a rebuild (the
// store upcasts what it reads).
func TestProjectorsSeeTheLatestVersion(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	u := eventstore.NewUpcasters()
	if err := u.Register("person_registered", 1, func(d json.RawMessage) (json.RawMessage, error) {
		var v1 struct{ Name string }
		if err := json.Unmarshal(d, &v1); err != nil {
			return nil, err
		}
		first, last, _ := strings.Cut(v1.Name, " ")
		return json.Marshal(map[string]string{"first": first, "last": last})
	}); err != nil {
		t.Fatal(err)
	}
	tenant := uuid.New()
	st := eventlog.StreamID{Type: "user", ID: uuid.New()}
	if _, err := e.store.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(),
		Events: []eventstore.NewEvent{{Type: "person_registered", Data: map[string]string{"name": "Ada Lovelace"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.Exactly(1),
		Events: []eventstore.NewEvent{{Type: "person_registered", SchemaVersion: 2,
			Data: map[string]string{"first": "Grace", "last": "Hopper"}}}}); err != nil {
		t.Fatal(err)
	}
	upcasting := e.store.WithUpcasters(u)
	// The relay is handed the upcasting store, and still publishes as stored.
	publisher := relay.New(upcasting, e.js, relay.Options{Logger: quietLogger()})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = publisher.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })

	published := readEvents(t, e.store, 2)
	want := map[int64]string{1: `v2 {"first":"Ada","last":"Lovelace"}`, 2: `v2 {"first":"Grace","last":"Hopper"}`}

	live := &versionCapture{}
	opts := testOptions(nil)
	opts.Upcasters = u
	stop := start(t, NewRunner(e.db.App, e.js, live, opts))
	waitCaughtUp(t, e, live.Name(), published[1].Position)
	stop()
	if got := live.got(); got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("live projector saw %v, want %v", got, want)
	}

	cons, err := e.js.OrderedConsumer(ctx, bus.StreamName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	onBus, err := bus.DecodeMessage(msg.Data())
	if err != nil || onBus.SchemaVersion != 1 || !strings.Contains(string(onBus.Data), "Ada Lovelace") {
		t.Fatalf("the bus carries %d %s (%v), want v1 as stored", onBus.SchemaVersion, onBus.Data, err)
	}

	rebuilt := &versionCapture{}
	if _, err := Rebuild(ctx, ownerPool(t, e), upcasting, rebuilt, nil); err != nil {
		t.Fatal(err)
	}
	if got := rebuilt.got(); got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("rebuild saw %v, want %v", got, want)
	}
}
