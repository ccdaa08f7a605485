package webhooks_test

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/google/uuid"
)

// syncBuffer collects the core's logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTenantsAndPlatform: an endpoint gets its tenant's events only;
// another tenant's administrator cannot see or change it; a platform
// endpoint gets every tenant's; tenant administrators cannot make one.
func TestTenantsAndPlatform(t *testing.T) {
	b := newBed(t, quick)
	other := b.Tenant(t, "other-"+uuid.NewString()[:8])
	otherToken := b.Login(t, b.User(t, other, "tenant_admin")).AccessToken
	platformToken := b.Login(t, b.User(t, domain.PlatformTenant, "platform_admin")).AccessToken

	mine, theirs, all := newReceiver(t), newReceiver(t), newReceiver(t)
	hm := b.hook(t, b.token, map[string]any{"url": mine.url(), "event_types": []string{"user_created"}}, "")
	ht := b.hook(t, otherToken, map[string]any{"url": theirs.url(), "event_types": []string{"user_created"}}, "")
	ha := b.hook(t, platformToken, map[string]any{"url": all.url(), "event_types": []string{"user_created"}}, "?scope=platform")
	mine.setSecrets(hm.Secret)
	theirs.setSecrets(ht.Secret)
	all.setSecrets(ha.Secret)

	if resp := b.Do(t, b.token, http.MethodPost, "/v1/webhooks?scope=platform", map[string]any{"url": mine.url(), "event_types": []string{"*"}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a tenant admin's platform endpoint: %d %s", resp.StatusCode, resp.Body)
	}
	for _, req := range []struct{ method, path string }{{http.MethodGet, ""}, {http.MethodPatch, ""}, {http.MethodDelete, ""}, {http.MethodGet, "/deliveries"}, {http.MethodPost, "/rotate-secret"}} {
		var body any
		if req.method == http.MethodPatch {
			body = map[string]any{"enabled": false}
		}
		if resp := b.Do(t, otherToken, req.method, "/v1/webhooks/"+hm.ID+req.path, body, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("another tenant's %s %s: %d %s", req.method, req.path, resp.StatusCode, resp.Body)
		}
	}

	b.users(t, other, 1)
	b.users(t, b.tenant, 1) // after the other tenant's: order says the other's was skipped, not late
	stacktest.Eventually(t, pipelineWait, "deliveries", func() bool {
		return len(mine.accepted()) == 1 && len(theirs.accepted()) == 1 && len(all.accepted()) == 2
	})
	if got := mine.accepted()[0].TenantID; got != b.tenant.String() {
		t.Fatalf("my endpoint got tenant %s's event", got)
	}
	if got := theirs.accepted()[0].TenantID; got != other.String() {
		t.Fatalf("their endpoint got tenant %s's event", got)
	}
	var list struct{ Items []createdHook }
	b.Do(t, platformToken, http.MethodGet, "/v1/webhooks?scope=platform", nil, &list)
	if len(list.Items) != 1 || list.Items[0].ID != ha.ID || list.Items[0].Secret != "" {
		t.Fatalf("platform endpoints: %+v", list.Items)
	}
}

// TestRotationReplayRedelivery: during a rotation's overlap both
// signatures are sent, each verifying with its secret; a replay sends
// earlier events again in order with their webhook-ids; a redelivery
// sends one again. No secret is ever in the core's logs or in an event.
func TestRotationReplayRedelivery(t *testing.T) {
	logs := &syncBuffer{}
	s := stacktest.Start(t, stacktest.Options{DevLoopbackHTTP: true, Webhooks: quick, LogTo: logs})
	tenant := s.Tenant(t, "rot-"+uuid.NewString()[:8])
	b := &bed{Stack: s, tenant: tenant, token: s.Login(t, s.User(t, tenant, "tenant_admin")).AccessToken}
	rcv := newReceiver(t)
	h := b.hook(t, b.token, map[string]any{"url": rcv.url(), "event_types": []string{"user_*"}}, "")
	rcv.setSecrets(h.Secret)
	b.users(t, tenant, 2)
	stacktest.Eventually(t, pipelineWait, "two deliveries", func() bool { return len(rcv.accepted()) == 2 })

	var rot struct {
		Secret string    `json:"secret"`
		Until  time.Time `json:"previous_valid_until"`
	}
	if resp := b.Do(t, b.token, http.MethodPost, "/v1/webhooks/"+h.ID+"/rotate-secret", map[string]any{"overlap_seconds": 3600}, &rot); resp.StatusCode != http.StatusOK || rot.Secret == h.Secret || !strings.HasPrefix(rot.Secret, "whsec_") {
		t.Fatalf("rotate: %d %s", resp.StatusCode, resp.Body)
	}
	// Once the dispatcher has read the rotation, a delivery carries two
	// signatures, one verifying with each secret on its own.
	rcv.setSecrets(rot.Secret, h.Secret)
	stacktest.Eventually(t, 30*time.Second, "a delivery signed with both secrets", func() bool {
		n := len(rcv.accepted())
		b.users(t, tenant, 1)
		stacktest.Eventually(t, pipelineWait, "the next delivery", func() bool { return len(rcv.accepted()) > n })
		last := rcv.accepted()[len(rcv.accepted())-1]
		return len(strings.Fields(last.Signatures)) == 2 &&
			verify(rot.Secret, last.Header, last.Body) == nil && verify(h.Secret, last.Header, last.Body) == nil
	})
	// Replay from the first delivered event: all of them again, in order, same ids.
	before := distinct(rcv.accepted())
	n := len(rcv.accepted())
	if resp := b.Do(t, b.token, http.MethodPost, "/v1/webhooks/"+h.ID+"/replay", map[string]any{"from_position": before[0].Position}, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("replay: %d %s", resp.StatusCode, resp.Body)
	}
	stacktest.Eventually(t, pipelineWait, "the replay", func() bool { return len(rcv.accepted()) >= n+len(before) })
	got := rcv.accepted()[n:]
	for i := range before {
		if got[i].ID != before[i].ID {
			t.Fatalf("replayed %d: %s, first sent as %s", i, got[i].ID, before[i].ID)
		}
	}
	// Redeliver the oldest delivery.
	var ds []delivery
	total := len(rcv.accepted())
	stacktest.Eventually(t, 10*time.Second, "deliveries recorded", func() bool { ds = b.deliveries(t, h.ID); return len(ds) >= total })
	target := ds[len(ds)-1]
	if resp := b.Do(t, b.token, http.MethodPost, "/v1/webhooks/"+h.ID+"/deliveries/"+target.ID+"/redeliver", nil, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("redeliver: %d %s", resp.StatusCode, resp.Body)
	}
	stacktest.Eventually(t, pipelineWait, "the redelivery", func() bool { return len(rcv.accepted()) > total })
	if last := rcv.accepted()[total]; last.ID != target.MessageID {
		t.Fatalf("redelivered %s, want %s", last.ID, target.MessageID)
	}
	stacktest.Eventually(t, 10*time.Second, "the redelivery listed", func() bool {
		ds = b.deliveries(t, h.ID)
		return len(ds) > total && ds[0].Redelivery && ds[0].MessageID == target.MessageID
	})
	if resp := b.Do(t, b.token, http.MethodPost, "/v1/webhooks/"+h.ID+"/deliveries/"+uuid.NewString()+"/redeliver", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("redeliver an unknown delivery: %d", resp.StatusCode)
	}

	// Secrets: never in a log, an event, or a later answer.
	var audit struct{ Items []map[string]any }
	b.Do(t, b.token, http.MethodGet, "/v1/audit?limit=200", nil, &audit)
	var hooks struct{ Items []map[string]any }
	b.Do(t, b.token, http.MethodGet, "/v1/webhooks", nil, &hooks)
	for _, secret := range []string{h.Secret, rot.Secret, strings.TrimPrefix(h.Secret, "whsec_"), strings.TrimPrefix(rot.Secret, "whsec_")} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a secret is in the core's logs")
		}
		for _, where := range []any{audit, hooks} {
			if strings.Contains(strings.ReplaceAll(jsonString(t, where), `\/`, "/"), secret) {
				t.Errorf("a secret is in an answer or an event")
			}
		}
	}
	if strings.Contains(logs.String(), "token=abc") {
		t.Errorf("the endpoint's URL (its query may hold a credential) is in the logs")
	}
}

// TestValidation: bad bodies are 400 naming the field; http outside dev
// mode is refused.
func TestValidation(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{Webhooks: quick})
	tenant := s.Tenant(t, "val-"+uuid.NewString()[:8])
	token := s.Login(t, s.User(t, tenant, "tenant_admin")).AccessToken
	viewer := s.Login(t, s.User(t, tenant, "viewer")).AccessToken
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"url": "http://127.0.0.1:9/x", "event_types": []string{"*"}}, "url"},
		{map[string]any{"url": "https://user:pw@hooks.example/x", "event_types": []string{"*"}}, "url"},
		{map[string]any{"url": "https://hooks.example/x", "event_types": []string{}}, "event_types"},
		{map[string]any{"url": "https://hooks.example/x", "event_types": []string{"no_such_event"}}, "event_types"},
		{map[string]any{"url": "https://hooks.example/x", "event_types": []string{"VM_*"}}, "event_types"},
		{map[string]any{"url": "https://hooks.example/x", "event_types": []string{"*"}, "secret": "whsec_mine"}, "secret"},
	} {
		resp := s.Do(t, token, http.MethodPost, "/v1/webhooks", tc.body, nil)
		errs, _ := resp.Problem(t)["errors"].(map[string]any)
		if resp.StatusCode != http.StatusBadRequest || errs[tc.field] == nil {
			t.Errorf("%v: %d %s", tc.body, resp.StatusCode, resp.Body)
		}
	}
	if resp := s.Do(t, viewer, http.MethodGet, "/v1/webhooks", nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer lists webhooks: %d", resp.StatusCode)
	}
	var c createdHook
	if resp := s.Do(t, token, http.MethodPost, "/v1/webhooks", map[string]any{"url": "https://hooks.example/x", "event_types": []string{"vm_*", "vm_*", "user_created"}}, &c); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, resp.Body)
	}
	if strings.Join(c.Types, ",") != "user_created,vm_*" {
		t.Errorf("event types %v, want sorted without repeats", c.Types)
	}
	for _, overlap := range []int{-1, 604801} {
		resp := s.Do(t, token, http.MethodPost, "/v1/webhooks/"+c.ID+"/rotate-secret", map[string]any{"overlap_seconds": overlap}, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("overlap %d: %d", overlap, resp.StatusCode)
		}
	}
	if resp := s.Do(t, token, http.MethodPost, "/v1/webhooks/"+c.ID+"/replay", map[string]any{"from_position": 0}, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replay from 0: %d", resp.StatusCode)
	}
	if resp := s.Do(t, token, http.MethodDelete, "/v1/webhooks/"+c.ID, nil, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %d %s", resp.StatusCode, resp.Body)
	}
	stacktest.Eventually(t, 10*time.Second, "the endpoint gone", func() bool {
		return s.Do(t, token, http.MethodGet, "/v1/webhooks/"+c.ID, nil, nil).StatusCode == http.StatusNotFound
	})

	// A tenant's endpoints are capped.
	for i := range domain.MaxWebhooksPerTenant {
		body := map[string]any{"url": "https://hooks.example/" + strconv.Itoa(i), "event_types": []string{"*"}, "enabled": false}
		if resp := s.Do(t, token, http.MethodPost, "/v1/webhooks", body, nil); resp.StatusCode != http.StatusCreated {
			t.Fatalf("endpoint %d: %d %s", i, resp.StatusCode, resp.Body)
		}
	}
	resp := s.Do(t, token, http.MethodPost, "/v1/webhooks", map[string]any{"url": "https://hooks.example/over", "event_types": []string{"*"}}, nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || resp.Problem(t)["code"] != "quota_exceeded" {
		t.Fatalf("one endpoint over the cap: %d %s", resp.StatusCode, resp.Body)
	}
}
