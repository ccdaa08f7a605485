package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
)

// splitName is person_registered v1 → v2: {"name": "Ada Lovelace"} becomes
// {"first": "Ada", "last": "Lovelace"}.
func splitName(data json.RawMessage) (json.RawMessage, error) {
	var v1 struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(data, &v1); err != nil {
		return nil, err
	}
	first, last, _ := strings.Cut(v1.Name, " ")
	return json.Marshal(map[string]string{"first": first, "last": last})
}

// addEmail is v2 → v3: an email member, empty for older events.
func addEmail(data json.RawMessage) (json.RawMessage, error) {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	m["email"] = ""
	return json.Marshal(m)
}

func registry(t *testing.T, steps map[int]eventstore.Upcaster) *eventstore.Upcasters {
	t.Helper()
	u := eventstore.NewUpcasters()
	for from, fn := range steps {
		if err := u.Register("person_registered", from, fn); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

func TestUpcasterRegistry(t *testing.T) {
	u := registry(t, map[int]eventstore.Upcaster{1: splitName, 2: addEmail})
	for _, bad := range []struct {
		typ  string
		from int
		fn   eventstore.Upcaster
	}{{"person_registered", 1, splitName}, {"person_registered", 0, splitName}, {"Bad Type", 1, splitName}, {"x", 1, nil}} {
		if err := u.Register(bad.typ, bad.from, bad.fn); err == nil {
			t.Errorf("Register(%q, %d) accepted", bad.typ, bad.from)
		}
	}
	if u.Latest("person_registered") != 3 || u.Latest("other") != 0 {
		t.Fatalf("latest: %d %d", u.Latest("person_registered"), u.Latest("other"))
	}

	e := eventlog.Event{Type: "person_registered", SchemaVersion: 1, Data: json.RawMessage(`{"name":"Ada Lovelace"}`)}
	if err := u.Upcast(&e); err != nil {
		t.Fatal(err)
	}
	if e.SchemaVersion != 3 || string(e.Data) != `{"email":"","first":"Ada","last":"Lovelace"}` {
		t.Fatalf("v1 → v3: %d %s", e.SchemaVersion, e.Data)
	}
	// Already latest, newer than known, or of a type without upcasters: as is.
	for _, e := range []eventlog.Event{
		{Type: "person_registered", SchemaVersion: 3, Data: json.RawMessage(`{"x":1}`)},
		{Type: "person_registered", SchemaVersion: 4, Data: json.RawMessage(`{"x":1}`)},
		{Type: "vm_started", SchemaVersion: 1, Data: json.RawMessage(`{"x":1}`)},
	} {
		before := e
		if err := u.Upcast(&e); err != nil || e.SchemaVersion != before.SchemaVersion || string(e.Data) != `{"x":1}` {
			t.Fatalf("%s v%d changed: %d %s %v", before.Type, before.SchemaVersion, e.SchemaVersion, e.Data, err)
		}
	}
	var none *eventstore.Upcasters
	if err := none.Upcast(&e); err != nil {
		t.Fatal(err)
	}

	// A hole in the chain (v2 → v3 missing) is an error, not a silent v2.
	holey := registry(t, map[int]eventstore.Upcaster{1: splitName, 3: addEmail})
	e = eventlog.Event{Type: "person_registered", SchemaVersion: 1, Data: json.RawMessage(`{"name":"Ada Lovelace"}`)}
	if err := holey.Upcast(&e); !errors.Is(err, eventstore.ErrMissingUpcaster) {
		t.Fatalf("missing step: %v", err)
	}
	failing := registry(t, map[int]eventstore.Upcaster{1: func(json.RawMessage) (json.RawMessage, error) { return []byte("{"), nil }})
	e = eventlog.Event{Type: "person_registered", SchemaVersion: 1, Data: json.RawMessage(`{}`)}
	if err := failing.Upcast(&e); err == nil {
		t.Fatal("invalid JSON from an upcaster accepted")
	}
}

// Old events are stored as recorded and read at the latest version.
func TestStoreReadsEventsAtTheLatestVersion(t *testing.T) {
	ctx := context.Background()
	raw, _ := newStore(t)
	tenant, st := uuid.New(), stream(t)
	// Recorded by an older release: v1.
	if _, err := raw.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(),
		Events: []eventstore.NewEvent{{Type: "person_registered", Data: map[string]string{"name": "Ada Lovelace"}}}}); err != nil {
		t.Fatal(err)
	}
	// The new release registers v1 → v2 and records v2.
	s := raw.WithUpcasters(registry(t, map[int]eventstore.Upcaster{1: splitName}))
	if _, err := s.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.Exactly(1),
		Events: []eventstore.NewEvent{{Type: "person_registered", SchemaVersion: 2,
			Data: map[string]string{"first": "Grace", "last": "Hopper"}}}}); err != nil {
		t.Fatal(err)
	}
	want := []string{`{"first":"Ada","last":"Lovelace"}`, `{"first":"Grace","last":"Hopper"}`}
	check := func(how string, evs []eventlog.Event, err error) {
		t.Helper()
		if err != nil || len(evs) != 2 {
			t.Fatalf("%s: %d events, %v", how, len(evs), err)
		}
		for i, e := range evs {
			var got, exp any
			_ = json.Unmarshal(e.Data, &got)
			_ = json.Unmarshal([]byte(want[i]), &exp)
			gj, _ := json.Marshal(got)
			ej, _ := json.Marshal(exp)
			if e.SchemaVersion != 2 || string(gj) != string(ej) {
				t.Errorf("%s: event %d is v%d %s, want v2 %s", how, i, e.SchemaVersion, e.Data, want[i])
			}
		}
	}
	evs, err := s.ReadStream(ctx, tenant, st, 1, 0)
	check("ReadStream", evs, err)
	evs, err = s.ReadStreamUntil(ctx, tenantdb.Tenant(tenant), st, 1, time.Time{}, 0)
	check("ReadStreamUntil", evs, err)
	evs = nil
	deadline := time.Now().Add(10 * time.Second)
	for len(evs) < 2 && time.Now().Before(deadline) {
		if evs, err = s.ReadAll(ctx, eventlog.Start, 0); err != nil {
			t.Fatal(err)
		}
		if len(evs) < 2 {
			time.Sleep(10 * time.Millisecond) // the watermark: an append still committing
		}
	}
	check("ReadAll", evs, err)

	// A tiny projector fed by ReadAll: the full names it knows, from v2 only.
	names := map[int64]string{}
	for _, e := range evs {
		var v2 struct{ First, Last string }
		if err := json.Unmarshal(e.Data, &v2); err != nil || e.SchemaVersion != 2 {
			t.Fatalf("projector got v%d %s", e.SchemaVersion, e.Data)
		}
		names[e.StreamVersion] = v2.First + " " + v2.Last
	}
	if names[1] != "Ada Lovelace" || names[2] != "Grace Hopper" {
		t.Fatalf("projected %v", names)
	}

	// The store itself still holds v1, which the hash chain covers.
	stored, err := raw.ReadStream(ctx, tenant, st, 1, 1)
	if err != nil || stored[0].SchemaVersion != 1 || !strings.Contains(string(stored[0].Data), `"name"`) {
		t.Fatalf("stored: %+v %v", stored, err)
	}
	if rep, err := s.VerifyChains(ctx, eventstore.VerifyFilter{Stream: st}); err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep, err)
	}

	// A release that lost a step fails the read rather than hand out v1 as v2.
	broken := raw.WithUpcasters(registry(t, map[int]eventstore.Upcaster{2: addEmail}))
	if _, err := broken.ReadStream(ctx, tenant, st, 1, 0); !errors.Is(err, eventstore.ErrMissingUpcaster) {
		t.Fatalf("missing step: %v", err)
	}
}

// TestUpcasterFingerprint names the registered steps, whatever order they
// were registered in; nil and empty registries upcast nothing alike.
func TestUpcasterFingerprint(t *testing.T) {
	var none *eventstore.Upcasters
	if none.Fingerprint() != eventstore.NewUpcasters().Fingerprint() || len(none.Fingerprint()) != 12 {
		t.Fatalf("nil %q, empty %q", none.Fingerprint(), eventstore.NewUpcasters().Fingerprint())
	}
	a := registry(t, map[int]eventstore.Upcaster{1: splitName, 2: addEmail})
	b := eventstore.NewUpcasters()
	for _, from := range []int{2, 1} {
		if err := b.Register("person_registered", from, splitName); err != nil {
			t.Fatal(err)
		}
	}
	if a.Fingerprint() != b.Fingerprint() {
		t.Fatalf("same steps, other order: %q and %q", a.Fingerprint(), b.Fingerprint())
	}
	c := registry(t, map[int]eventstore.Upcaster{1: splitName})
	if c.Fingerprint() == a.Fingerprint() || c.Fingerprint() == none.Fingerprint() {
		t.Fatalf("different steps, same fingerprint: %q", c.Fingerprint())
	}
	if err := c.Register("other_event", 1, addEmail); err != nil {
		t.Fatal(err)
	}
	if c.Fingerprint() == a.Fingerprint() {
		t.Fatal("another type's step does not change the fingerprint")
	}
}
