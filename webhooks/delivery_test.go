package webhooks_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/accountdb/accountdb/webhooks"
	"github.com/google/uuid"
)

// quick is a retry schedule short enough for tests.
var quick = webhooks.Options{Timeout: 2 * time.Second, PollInterval: 50 * time.Millisecond,
	Backoff: webhooks.Backoff{Base: 50 * time.Millisecond, Max: 400 * time.Millisecond, GiveUpAfter: time.Hour}}

type bed struct {
	*stacktest.Stack
	tenant uuid.UUID
	token  string
}

// newBed is a stack (accepting http:// loopback endpoints, as `accountdb
// dev` does) and a tenant administrator's token.
func newBed(t *testing.T, o webhooks.Options) *bed {
	s := stacktest.Start(t, stacktest.Options{DevLoopbackHTTP: true, Webhooks: o})
	tenant := s.Tenant(t, "hooks-"+uuid.NewString()[:8])
	return &bed{Stack: s, tenant: tenant, token: s.Login(t, s.User(t, tenant, "tenant_admin")).AccessToken}
}

type createdHook struct {
	ID       string   `json:"id"`
	Secret   string   `json:"secret"`
	URL      string   `json:"url"`
	Types    []string `json:"event_types"`
	Enabled  bool     `json:"enabled"`
	Position int64    `json:"position"`
}

func (b *bed) hook(t *testing.T, token string, body map[string]any, query string) createdHook {
	t.Helper()
	var c createdHook
	resp := b.Do(t, token, http.MethodPost, "/v1/webhooks"+query, body, &c)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/webhooks: %d %s", resp.StatusCode, resp.Body)
	}
	return c
}

// users creates n users of tenant: n user_created events, in this order.
func (b *bed) users(t *testing.T, tenant uuid.UUID, n int) []uuid.UUID {
	var ids []uuid.UUID
	for range n {
		ids = append(ids, b.User(t, tenant, "viewer").ID)
	}
	return ids
}

type hookView struct {
	Enabled        bool    `json:"enabled"`
	DisabledReason *string `json:"disabled_reason"`
}

type delivery struct {
	ID           string `json:"id"`
	MessageID    string `json:"message_id"`
	Position     int64  `json:"event_position"`
	Attempt      int    `json:"attempt"`
	Status       string `json:"status"`
	ResponseCode *int   `json:"response_code"`
	Excerpt      string `json:"response_excerpt"`
	Error        string `json:"error"`
	Redelivery   bool   `json:"redelivery"`
}

func (b *bed) deliveries(t *testing.T, id string) []delivery {
	t.Helper()
	var out struct{ Items []delivery }
	if resp := b.Do(t, b.token, http.MethodGet, "/v1/webhooks/"+id+"/deliveries?limit=200", nil, &out); resp.StatusCode != http.StatusOK {
		t.Fatalf("deliveries: %d %s", resp.StatusCode, resp.Body)
	}
	return out.Items
}

// distinct is the first arrival of each message, in arrival order.
func distinct(rs []received) []received {
	seen := map[string]bool{}
	var out []received
	for _, r := range rs {
		if !seen[r.ID] {
			seen[r.ID] = true
			out = append(out, r)
		}
	}
	return out
}

// TestOutageThenRecovery: the receiver refuses everything for a while,
// then accepts; every event arrives, each verified by the receiver's own
// implementation of the specification, in log order, none lost; the
// failed attempts are listed with their answers.
func TestOutageThenRecovery(t *testing.T) {
	b := newBed(t, quick)
	rcv := newReceiver(t)
	rcv.answer(http.StatusServiceUnavailable)
	h := b.hook(t, b.token, map[string]any{"url": rcv.url(), "event_types": []string{"user_*"}, "description": "billing"}, "")
	if len(h.Secret) < 40 || h.Secret[:6] != "whsec_" || !h.Enabled {
		t.Fatalf("created %+v", h)
	}
	rcv.setSecrets(h.Secret)
	users := b.users(t, b.tenant, 12)
	stacktest.Eventually(t, pipelineWait, "failed attempts", func() bool {
		return len(b.deliveries(t, h.ID)) >= 3
	})
	rcv.answer(0)
	stacktest.Eventually(t, 30*time.Second, "every event delivered", func() bool { return len(distinct(rcv.accepted())) >= len(users) })

	got := distinct(rcv.accepted())
	if len(got) != len(users) {
		t.Fatalf("received %d distinct events, want %d: %+v", len(got), len(users), got)
	}
	for i, r := range got {
		if r.Type != "user_created" || r.TenantID != b.tenant.String() {
			t.Errorf("delivery %d: %+v", i, r)
		}
		if i > 0 && r.Position <= got[i-1].Position {
			t.Errorf("out of order: %d after %d", r.Position, got[i-1].Position)
		}
		if r.ID != webhooks.MessageID(uuid.MustParse(h.ID), uuid.MustParse(r.EventID)) {
			t.Errorf("webhook-id %s is not the message id of event %s", r.ID, r.EventID)
		}
	}
	// Records are written in batches, shortly after their attempts.
	var ds []delivery
	stacktest.Eventually(t, 10*time.Second, "every attempt recorded", func() bool {
		ds = b.deliveries(t, h.ID)
		return slices.ContainsFunc(ds, func(d delivery) bool { return d.Position == got[len(got)-1].Position && d.Status == "succeeded" })
	})
	var failed, ok int
	for _, d := range ds {
		switch {
		case d.Status == "failed" && d.ResponseCode != nil && *d.ResponseCode == 503 && d.Excerpt == "answered 503\n":
			failed++
		case d.Status == "succeeded" && d.ResponseCode != nil && *d.ResponseCode == 204:
			ok++
		default:
			t.Errorf("unexpected delivery record %+v", d)
		}
	}
	if failed < 3 || ok != len(users) {
		t.Fatalf("deliveries: %d failed, %d succeeded (want ≥3 and %d)", failed, ok, len(users))
	}
	// The first event was retried: its later attempts count up.
	first := slices.IndexFunc(ds, func(d delivery) bool { return d.Status == "succeeded" && d.Position == got[0].Position })
	if first < 0 || ds[first].Attempt < 2 {
		t.Fatalf("the first event's successful attempt: %+v", ds)
	}
}

// TestCoreKilledMidDelivery: the core dispatching an endpoint is killed
// (SIGKILL, a process of its own) while the receiver holds a delivery
// unanswered; the next core (a replica, or the same restarted) delivers it
// again with the same webhook-id: at least once.
func TestCoreKilledMidDelivery(t *testing.T) {
	b := newBed(t, quick)
	rcv := newReceiver(t)
	hold := make(chan struct{})
	rcv.hold = hold
	h := b.hook(t, b.token, map[string]any{"url": rcv.url(), "event_types": []string{"user_created"}}, "")
	rcv.setSecrets(h.Secret)
	// Nothing for the endpoint yet: the in-process core stops, and the
	// process started now dispatches (and relays) what comes next.
	b.Stop()
	p := b.StartProcess(t)
	at := *b.Stack
	at.URL = p.URL
	var u struct{ ID string }
	if resp := at.Do(t, b.token, http.MethodPost, "/v1/users",
		map[string]any{"email": "killed-" + uuid.NewString()[:8] + "@example.com", "display_name": "K", "password": "pw-" + uuid.NewString(), "roles": []string{"viewer"}}, &u); resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/users: %d %s", resp.StatusCode, resp.Body)
	}
	stacktest.Eventually(t, 30*time.Second, "a delivery in flight", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return len(rcv.tries) == 1
	})
	p.Kill(t)
	// The held request must be seen abandoned before it is let go: released
	// first, it would be accepted though its sender is dead (a select with
	// both cases ready picks either), and the redelivery never asserted.
	stacktest.Eventually(t, 10*time.Second, "the killed process's delivery abandoned", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return rcv.abandoned == 1
	})
	rcv.mu.Lock()
	rcv.hold = nil
	rcv.mu.Unlock()
	close(hold)
	b.Replica(t)
	stacktest.Eventually(t, 30*time.Second, "the delivery made again", func() bool { return len(rcv.accepted()) >= 1 })
	got := rcv.accepted()
	rcv.mu.Lock()
	tries := rcv.tries[got[0].ID]
	ids := len(rcv.tries)
	rcv.mu.Unlock()
	if ids != 1 || tries < 2 || got[0].Type != "user_created" || got[0].TenantID != b.tenant.String() {
		t.Fatalf("want one webhook-id sent at least twice, got %d ids, %d tries of %s (%+v)", ids, tries, got[0].ID, got[0])
	}
}

// TestGoneDisablesAtOnce: a 410 disables the endpoint after one attempt,
// with an event saying why.
func TestGoneDisablesAtOnce(t *testing.T) {
	b := newBed(t, quick)
	rcv := newReceiver(t)
	rcv.answer(http.StatusGone)
	// user_* rather than *: webhook_created itself would be delivered as
	// soon as the endpoint exists, before the receiver knows its secret.
	h := b.hook(t, b.token, map[string]any{"url": rcv.url(), "event_types": []string{"user_*"}}, "")
	rcv.setSecrets(h.Secret)
	b.users(t, b.tenant, 2)
	var v hookView
	stacktest.Eventually(t, pipelineWait, "the endpoint disabled", func() bool {
		v = hookView{}
		// Decoded only from a 200: a stale or missing read is not "disabled".
		return b.Do(t, b.token, http.MethodGet, "/v1/webhooks/"+h.ID, nil, &v).StatusCode == http.StatusOK && !v.Enabled
	})
	if v.DisabledReason == nil || *v.DisabledReason != "the endpoint answered 410 Gone" {
		t.Fatalf("disabled_reason %v", v.DisabledReason)
	}
	var audit struct {
		Items []struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
	}
	b.Do(t, b.token, http.MethodGet, "/v1/audit?type=webhook_disabled", nil, &audit)
	if len(audit.Items) != 1 || audit.Items[0].Data["reason"] != "the endpoint answered 410 Gone" {
		t.Fatalf("webhook_disabled events: %+v", audit.Items)
	}
	// Nothing is sent once the disable is recorded. (A disable that could
	// not be recorded, say under a database's overload, lets the next
	// attempt give up again, so the count is not pinned to one.)
	tries := func() int {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		n := 0
		for _, c := range rcv.tries {
			n += c
		}
		return n
	}
	before := tries()
	time.Sleep(5 * quick.PollInterval)
	if after := tries(); after != before || before < 1 {
		t.Fatalf("the endpoint was tried %d times when disabled, %d later", before, after)
	}
	ds := b.deliveries(t, h.ID)
	for _, d := range ds {
		if d.Status != "failed" || d.ResponseCode == nil || *d.ResponseCode != http.StatusGone {
			t.Fatalf("a delivery other than a 410: %+v", d)
		}
	}
}

// TestGivesUpAfterTheRetryWindow: an endpoint failing longer than the
// give-up window is disabled, the reason naming the last failure.
func TestGivesUpAfterTheRetryWindow(t *testing.T) {
	o := quick
	o.Backoff.GiveUpAfter = 500 * time.Millisecond
	b := newBed(t, o)
	rcv := newReceiver(t)
	rcv.answer(http.StatusInternalServerError)
	h := b.hook(t, b.token, map[string]any{"url": rcv.url(), "event_types": []string{"user_created"}}, "")
	rcv.setSecrets(h.Secret)
	b.users(t, b.tenant, 1)
	var v hookView
	stacktest.Eventually(t, pipelineWait, "the endpoint disabled", func() bool {
		v = hookView{}
		// Decoded only from a 200: a stale or missing read is not "disabled".
		return b.Do(t, b.token, http.MethodGet, "/v1/webhooks/"+h.ID, nil, &v).StatusCode == http.StatusOK && !v.Enabled
	})
	if v.DisabledReason == nil || !contains(*v.DisabledReason, "no delivery succeeded for 500ms") || !contains(*v.DisabledReason, "answered 500") {
		t.Fatalf("disabled_reason %v", v.DisabledReason)
	}
	// Enabled again, delivery resumes with the event it gave up on.
	rcv.answer(0)
	if resp := b.Do(t, b.token, http.MethodPatch, "/v1/webhooks/"+h.ID, map[string]any{"enabled": true}, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("enable: %d %s", resp.StatusCode, resp.Body)
	}
	stacktest.Eventually(t, pipelineWait, "the event delivered after re-enabling", func() bool { return len(rcv.accepted()) == 1 })
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub))
}

// TestHungEndpointDelaysNoOther: one endpoint never answers; another of
// the same tenant gets every event meanwhile.
func TestHungEndpointDelaysNoOther(t *testing.T) {
	b := newBed(t, quick)
	hung, live := newReceiver(t), newReceiver(t)
	release := make(chan struct{})
	hung.hold = release
	t.Cleanup(func() { close(release) })
	hh := b.hook(t, b.token, map[string]any{"url": hung.url(), "event_types": []string{"user_created"}}, "")
	hl := b.hook(t, b.token, map[string]any{"url": live.url(), "event_types": []string{"user_created"}}, "")
	hung.setSecrets(hh.Secret)
	live.setSecrets(hl.Secret)
	users := b.users(t, b.tenant, 5)
	stacktest.Eventually(t, pipelineWait, "every event at the live endpoint", func() bool { return len(live.accepted()) == len(users) })
	if n := len(hung.accepted()); n != 0 {
		t.Fatalf("the hung endpoint accepted %d", n)
	}
}
