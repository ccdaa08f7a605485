package privacy

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
)

var (
	tenantA = uuid.MustParse("0190f3c4-0000-7000-8000-00000000000a")
	userA   = uuid.MustParse("0190f3c4-0000-7000-8000-0000000000a1")
	adminA  = uuid.MustParse("0190f3c4-0000-7000-8000-0000000000ad")
)

// recorded is what the store would keep of a: its events as read back.
func recorded(t *testing.T, a eventstore.Append) []eventlog.Event {
	t.Helper()
	out := make([]eventlog.Event, len(a.Events))
	for i, e := range a.Events {
		data, err := asJSON(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = eventlog.Event{Stream: a.Stream, Type: e.Type, TenantID: a.TenantID, ActorID: a.ActorID, Data: data, Metadata: a.Metadata}
	}
	return out
}

func userCreatedAppend() eventstore.Append {
	return eventstore.Append{
		Stream: eventlog.StreamID{Type: domain.StreamUser, ID: userA}, TenantID: tenantA, ActorID: adminA,
		Metadata: eventlog.Metadata{RequestID: "r1", ClientIP: "198.51.100.7", UserAgent: "curl/8"},
		Events:   []eventstore.NewEvent{{Type: "user_created", Data: &domain.UserCreated{Email: "ada@example.com", DisplayName: "Ada L", Roles: []string{"viewer"}}}},
	}
}

func TestSealThenReveal(t *testing.T) {
	ctx := context.Background()
	keys := newMemKeys()
	a := userCreatedAppend()
	original := a.Events[0].Data
	if err := NewSealer(keys).SealAppend(ctx, &a); err != nil {
		t.Fatal(err)
	}
	if a.Events[0].Data == original {
		t.Fatal("the caller's event value was kept, not replaced by its sealed JSON")
	}
	evs := recorded(t, a)
	stored := string(evs[0].Data) + evs[0].Metadata.ClientIP + evs[0].Metadata.UserAgent
	for _, clear := range []string{"ada@example.com", "Ada L", "198.51.100.7", "curl/8"} {
		if strings.Contains(stored, clear) {
			t.Fatalf("%q stored in clear: %s", clear, stored)
		}
	}
	if evs[0].Metadata.RequestID != "r1" || !strings.Contains(stored, `"roles":["viewer"]`) {
		t.Fatalf("what is not personal must stay as it is: %s %+v", stored, evs[0].Metadata)
	}
	if !strings.HasPrefix(evs[0].Metadata.ClientIP, cipherPrefix+adminA.String()+":meta-") {
		t.Fatalf("metadata must be sealed with the actor's key of the day: %s", evs[0].Metadata.ClientIP)
	}
	if err := NewRevealer(keys).Reveal(ctx, evs); err != nil {
		t.Fatal(err)
	}
	var got domain.UserCreated
	if err := json.Unmarshal(evs[0].Data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Email != "ada@example.com" || got.DisplayName != "Ada L" || evs[0].Metadata.ClientIP != "198.51.100.7" || evs[0].Metadata.UserAgent != "curl/8" {
		t.Fatalf("revealed %+v %+v", got, evs[0].Metadata)
	}
}

func TestRevealAfterErasure(t *testing.T) {
	ctx := context.Background()
	keys := newMemKeys()
	a := userCreatedAppend()
	a.ActorID = userA // the person's own request: their metadata too
	if err := NewSealer(keys).SealAppend(ctx, &a); err != nil {
		t.Fatal(err)
	}
	keys.erase(tenantA, userA)
	evs := recorded(t, a)
	if err := NewRevealer(keys).Reveal(ctx, evs); err != nil {
		t.Fatal(err)
	}
	var got domain.UserCreated
	if err := json.Unmarshal(evs[0].Data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Email != domain.Erased || got.DisplayName != domain.Erased || evs[0].Metadata.ClientIP != domain.Erased || evs[0].Metadata.UserAgent != domain.Erased {
		t.Fatalf("after erasure: %+v %+v", got, evs[0].Metadata)
	}
	// Nothing new is sealed for an erased subject: it is recorded erased.
	b := userCreatedAppend()
	b.ActorID = userA
	if err := NewSealer(keys).SealAppend(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if b.Metadata.ClientIP != domain.Erased || !strings.Contains(string(b.Events[0].Data.(json.RawMessage)), `"email":"[erased]"`) {
		t.Fatalf("an erased subject's new data: %s %+v", b.Events[0].Data, b.Metadata)
	}
}

func TestCiphertextIsBoundToItsField(t *testing.T) {
	ctx := context.Background()
	keys := newMemKeys()
	a := userCreatedAppend()
	if err := NewSealer(keys).SealAppend(ctx, &a); err != nil {
		t.Fatal(err)
	}
	evs := recorded(t, a)
	// The display name's ciphertext copied into the email field, and the IP's
	// into the user agent, open as nothing.
	var obj map[string]any
	if err := json.Unmarshal(evs[0].Data, &obj); err != nil {
		t.Fatal(err)
	}
	obj["email"] = obj["display_name"]
	evs[0].Data, _ = json.Marshal(obj)
	evs[0].Metadata.UserAgent = evs[0].Metadata.ClientIP
	if err := NewRevealer(keys).Reveal(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(evs[0].Data), `"email":"[erased]"`) || evs[0].Metadata.UserAgent != domain.Erased {
		t.Fatalf("a moved ciphertext opened: %s %+v", evs[0].Data, evs[0].Metadata)
	}
}

func TestPlaintextOfOldEventsIsLeftAlone(t *testing.T) {
	e := eventlog.Event{Stream: eventlog.StreamID{Type: domain.StreamUser, ID: userA}, Type: "user_created", TenantID: tenantA,
		Data: json.RawMessage(`{"email":"old@example.com","display_name":"Old","roles":[]}`), Metadata: eventlog.Metadata{ClientIP: "192.0.2.1"}}
	evs := []eventlog.Event{e}
	if err := NewRevealer(newMemKeys()).Reveal(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if string(evs[0].Data) != string(e.Data) || evs[0].Metadata.ClientIP != "192.0.2.1" {
		t.Fatalf("plaintext changed: %s %+v", evs[0].Data, evs[0].Metadata)
	}
}

func TestSubjectFromField(t *testing.T) {
	ctx := context.Background()
	keys := newMemKeys()
	a := eventstore.Append{Stream: eventlog.StreamID{Type: domain.StreamSession, ID: uuid.New()}, TenantID: tenantA,
		Events: []eventstore.NewEvent{{Type: "oidc_signed_in", Data: &domain.OIDCSignedIn{Subject: "sub-123", UserID: userA}}}}
	if err := NewSealer(keys).SealAppend(ctx, &a); err != nil {
		t.Fatal(err)
	}
	data := string(a.Events[0].Data.(json.RawMessage))
	if strings.Contains(data, "sub-123") || !strings.Contains(data, cipherPrefix+userA.String()+":"+DataKey) {
		t.Fatalf("oidc_signed_in's subject must be sealed with its user's key: %s", data)
	}
}

func TestMetadataKeyNamesItsDay(t *testing.T) {
	day := time.Date(2026, 12, 4, 23, 59, 0, 0, time.FixedZone("x", -3600))
	name := MetadataKey(day)
	if name != "meta-20261205" || !validKeyName(name) {
		t.Fatalf("MetadataKey = %q", name)
	}
	p, ok := metadataPeriod(name)
	if !ok || !p.Equal(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("period %v %v", p, ok)
	}
	if _, ok := metadataPeriod(DataKey); ok {
		t.Fatal("the data key has no period")
	}
}

func TestParseCiphertextRefusesMalformed(t *testing.T) {
	for _, s := range []string{"", "pii1:", "pii1:nope:data:AAAA", "pii1:" + userA.String() + ":BAD:AAAA",
		"pii1:" + userA.String() + ":data:!!!", "plain@example.com"} {
		if _, _, err := parseCiphertext(s); err == nil {
			t.Errorf("parseCiphertext(%q) accepted", s)
		}
	}
}
