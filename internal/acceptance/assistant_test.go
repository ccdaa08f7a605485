package acceptance_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/assistant"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/openaitest"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/google/uuid"
)

// The assistant (issue 18, docs/ASSISTANT.md), against a fake
// OpenAI-compatible model that records every request it gets.

const modelKey = "sk-test-assistant-key-0123456789"

var sentPosition = regexp.MustCompile(`"position":(\d+)`)

// citeFirst answers text citing the first event it was sent and a
// position it was not.
func citeFirst(text string) func(openaitest.Request) openaitest.Reply {
	return func(r openaitest.Request) openaitest.Reply {
		first := "0"
		if m := sentPosition.FindStringSubmatch(r.Messages[len(r.Messages)-1].Content); m != nil {
			first = m[1]
		}
		return openaitest.Reply{Text: text + " [#" + first + "] and [#999999999999].", ChunkSize: 7, PromptTokens: 50, Completion: 10}
	}
}

type answer struct {
	Answer    string  `json:"answer"`
	Citations []int64 `json:"citations"`
}

// sse splits an event stream into (event, data) pairs.
func sse(t *testing.T, body []byte) [][2]string {
	t.Helper()
	var out [][2]string
	for _, block := range strings.Split(strings.TrimSpace(string(body)), "\n\n") {
		var ev, data string
		for _, line := range strings.Split(block, "\n") {
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				ev = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				data = v
			} else {
				t.Fatalf("not an SSE line: %q in %s", line, body)
			}
		}
		out = append(out, [2]string{ev, data})
	}
	return out
}

func TestAssistant(t *testing.T) {
	model := openaitest.Start(t, modelKey, citeFirst("The VM was requested"))
	s := stacktest.Start(t, stacktest.Options{
		TrustedProxies:  []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
		Assistant:       assistant.Config{URL: model.BaseURL(), Model: "test-model", APIKey: modelKey, AnswerTimeout: 3 * time.Second},
		AssistantLimits: api.AssistantLimits{Rate: api.RateLimit{N: 1000, Window: time.Minute}}})
	s.StartProxmox(t, pvesim.Options{})
	tag := uuid.NewString()[:8]
	ip, agent := "203.0.113.77", "AssistantProbe/"+tag
	from := []string{"X-Forwarded-For", ip, "User-Agent", agent}

	tenant := s.Tenant(t, "assist-"+tag)
	admin := s.Login(t, s.User(t, tenant, auth.RoleTenantAdmin)).AccessToken
	viewer := s.Login(t, s.User(t, tenant, auth.RoleViewer)).AccessToken
	platform := s.Login(t, s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)).AccessToken

	// What must never reach the model: a person's data (one of them
	// erased), a cloud-init password, an API token, a webhook secret, the
	// model's own key, and everything of another tenant.
	personEmail, personName := "ida."+tag+"@example.com", "Ida Nightingale "+tag
	wantStatus(t, s.Do(t, admin, http.MethodPost, "/v1/users", map[string]any{"email": personEmail, "display_name": personName,
		"password": "correct-horse-" + tag, "roles": []string{"viewer"}}, nil, from...), http.StatusAccepted)
	erasedEmail, erasedName := "gone."+tag+"@example.com", "Gone Person "+tag
	var gone struct{ ID string }
	wantStatus(t, s.Do(t, admin, http.MethodPost, "/v1/users", map[string]any{"email": erasedEmail, "display_name": erasedName,
		"password": "correct-horse-" + tag, "roles": []string{"viewer"}}, &gone, from...), http.StatusAccepted)
	wantStatus(t, s.Do(t, admin, http.MethodPost, "/v1/users/"+gone.ID+"/erase", map[string]any{"confirm_email": erasedEmail}, nil, from...),
		http.StatusAccepted)
	stacktest.Eventually(t, 10*time.Second, "templates", func() bool {
		var l struct{ Items []any }
		r := s.Do(t, admin, http.MethodGet, "/v1/templates", nil, &l)
		return r.StatusCode == 200 && len(l.Items) > 0
	})
	password := "Cl0ud-1nit-" + tag
	var vm struct{ ID string }
	wantStatus(t, s.Do(t, admin, http.MethodPost, "/v1/vms", map[string]any{"name": "web-" + tag, "kind": "qemu", "cores": 1,
		"memory_mb": 512, "disk_gb": 4, "template": "debian-12", "cloud_init": map[string]any{"user": "ops", "password": password}}, &vm, from...),
		http.StatusAccepted)
	var tok struct{ Token string }
	wantStatus(t, s.Do(t, admin, http.MethodPost, "/v1/users/me/tokens", map[string]any{"name": "ci", "permissions": []string{"vm:read"}}, &tok, from...),
		http.StatusCreated)
	var hook struct{ Secret string }
	wantStatus(t, s.Do(t, admin, http.MethodPost, "/v1/webhooks", map[string]any{"url": "https://hooks.example.com/" + tag,
		"event_types": []string{"vm_create_requested"}, "enabled": false}, &hook, from...), http.StatusCreated)

	other := s.Tenant(t, "elsewhere-"+tag)
	otherAdmin := s.Login(t, s.User(t, other, auth.RoleTenantAdmin)).AccessToken
	otherName := "other-tenant-vm-" + tag
	var otherVM struct{ ID string }
	wantStatus(t, s.Do(t, otherAdmin, http.MethodPost, "/v1/vms", map[string]any{"name": otherName, "kind": "qemu", "cores": 1,
		"memory_mb": 512, "disk_gb": 4, "template": "debian-12"}, &otherVM), http.StatusAccepted)

	var on struct{ Enabled bool }
	if wantStatus(t, s.Do(t, viewer, http.MethodGet, "/v1/assistant", nil, &on), http.StatusOK); !on.Enabled {
		t.Fatal("GET /v1/assistant: not enabled")
	}

	t.Run("a viewer explains a VM; citations are kept only for events sent", func(t *testing.T) {
		var a answer
		wantStatus(t, s.Do(t, viewer, http.MethodPost, "/v1/vms/"+vm.ID+"/explain", nil, &a), http.StatusOK)
		if len(a.Citations) != 1 || !strings.Contains(a.Answer, "[#999999999999]") {
			t.Fatalf("answer %+v: want the one real citation kept", a)
		}
		reqs := model.Requests()
		last := reqs[len(reqs)-1]
		if last.Model != "test-model" || last.Stream || last.Authorization != "Bearer "+modelKey || len(last.Messages) != 2 ||
			last.Messages[0].Role != "system" {
			t.Fatalf("request to the model: %+v", last)
		}
		if prompt := last.Messages[1].Content; !strings.Contains(prompt, fmt.Sprintf(`"position":%d,`, a.Citations[0])) ||
			!strings.Contains(prompt, "vm_create_requested") {
			t.Fatalf("the cited event was not sent: %s", last.Body)
		}
		// The console's link to a cited event: the audit log started there.
		var page struct{ Items []struct{ Position int64 } }
		wantStatus(t, s.Do(t, admin, http.MethodGet, fmt.Sprintf("/v1/audit?from_position=%d&limit=1", a.Citations[0]), nil, &page), http.StatusOK)
		if len(page.Items) != 1 || page.Items[0].Position != a.Citations[0] {
			t.Fatalf("audit from the cited position: %+v", page.Items)
		}
		wantProblem(t, s.Do(t, admin, http.MethodGet, "/v1/audit?from_position=0", nil, nil), http.StatusBadRequest, "validation_failed")
		wantProblem(t, s.Do(t, viewer, http.MethodPost, "/v1/vms/"+otherVM.ID+"/explain", nil, nil), http.StatusNotFound, "not_found")
		wantProblem(t, s.Do(t, viewer, http.MethodPost, "/v1/vms/"+vm.ID+"/explain", map[string]any{"tenant_id": other.String()}, nil),
			http.StatusBadRequest, "validation_failed")
	})

	t.Run("ask needs audit:read and a question", func(t *testing.T) {
		wantProblem(t, s.Do(t, viewer, http.MethodPost, "/v1/assistant/ask", map[string]any{"question": "who?"}, nil), http.StatusForbidden, "forbidden")
		wantProblem(t, s.Do(t, admin, http.MethodPost, "/v1/assistant/ask", map[string]any{"question": " "}, nil), http.StatusBadRequest, "validation_failed")
		wantProblem(t, s.Do(t, admin, http.MethodPost, "/v1/assistant/ask", map[string]any{"question": "x", "since": "yesterday"}, nil),
			http.StatusBadRequest, "validation_failed")
		var a answer
		wantStatus(t, s.Do(t, admin, http.MethodPost, "/v1/assistant/ask", map[string]any{"question": "What happened today?"}, &a), http.StatusOK)
		if len(a.Citations) != 1 {
			t.Fatalf("answer %+v", a)
		}
	})

	t.Run("streamed: delta, citations, done", func(t *testing.T) {
		r := s.Do(t, admin, http.MethodPost, "/v1/assistant/ask", map[string]any{"question": "What happened?"}, nil, "Accept", "text/event-stream")
		wantStatus(t, r, http.StatusOK)
		if ct := r.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		evs := sse(t, r.Body)
		var text strings.Builder
		n := len(evs)
		if n < 4 || evs[n-2][0] != "citations" || evs[n-1][0] != "done" {
			t.Fatalf("events %v", evs)
		}
		for _, e := range evs[:n-2] {
			if e[0] != "delta" {
				t.Fatalf("event %v before citations", e)
			}
			var d struct{ Text string }
			decodeInto(t, e[1], &d)
			text.WriteString(d.Text)
		}
		if !strings.HasPrefix(text.String(), "The VM was requested [#") {
			t.Fatalf("streamed text %q", text.String())
		}
		var c struct{ Citations []int64 }
		decodeInto(t, evs[n-2][1], &c)
		if len(c.Citations) != 1 {
			t.Fatalf("citations %s", evs[n-2][1])
		}
		reqs := model.Requests()
		if last := reqs[len(reqs)-1]; !last.Stream || !last.IncludeUsage {
			t.Fatalf("streamed request without stream_options.include_usage: %s", last.Body)
		}
	})

	t.Run("nothing secret, personal or of another tenant was sent", func(t *testing.T) {
		sent := model.AllBodies()
		for what, v := range map[string]string{"email": personEmail, "name": personName, "erased email": erasedEmail,
			"erased name": erasedName, "cloud-init password": password, "API token": tok.Token, "webhook secret": hook.Secret,
			"model key": modelKey, "client IP": ip, "user agent": agent, "other tenant's VM": otherName,
			"other tenant": other.String(), "sealed value": "pii1:", "vault value": `"v1:`, "password hash": "$6$"} {
			if v == "" {
				t.Fatalf("%s: empty probe", what)
			}
			if strings.Contains(sent, v) {
				t.Errorf("the model was sent the %s (%q)", what, v)
			}
		}
		if !strings.Contains(sent, assistant.Withheld) || !strings.Contains(sent, "web-"+tag) {
			t.Error("the model was not sent the tenant's events with personal fields withheld")
		}
	})

	t.Run("request metadata only when the tenant allows it", func(t *testing.T) {
		wantStatus(t, s.Do(t, platform, http.MethodPut, "/v1/tenants/"+tenant.String()+"/privacy",
			map[string]any{"request_metadata_retention_days": 30, "assistant_share_ips": true}, nil), http.StatusAccepted)
		var pol struct {
			Share bool `json:"assistant_share_ips"`
		}
		wantStatus(t, s.Do(t, platform, http.MethodGet, "/v1/tenants/"+tenant.String()+"/privacy", nil, &pol), http.StatusOK)
		if !pol.Share {
			t.Fatal("assistant_share_ips not set")
		}
		wantStatus(t, s.Do(t, admin, http.MethodPost, "/v1/assistant/ask", map[string]any{"question": "From where?"}, nil), http.StatusOK)
		reqs := model.Requests()
		if last := reqs[len(reqs)-1].Body; !strings.Contains(last, ip) || !strings.Contains(last, agent) || strings.Contains(last, personEmail) {
			t.Fatalf("with sharing on, the IP and agent go and the email does not: %s", last)
		}
	})

	t.Run("every question is recorded, its words sealed", func(t *testing.T) {
		d := openDB(t, s)
		if n := d.count(t, `SELECT count(*) FROM events WHERE event_type = 'assistant_question_answered' AND tenant_id = $1
			AND stream_id = $2 AND data->>'question' LIKE 'pii1:%' AND data->>'answer' LIKE 'pii1:%'`, tenant, "assistant-"+tenant.String()); n < 4 {
			t.Fatalf("%d sealed assistant_question_answered events", n)
		}
		var page struct {
			Items []struct {
				Data struct {
					Question string  `json:"question"`
					Mode     string  `json:"mode"`
					Cited    []int64 `json:"cited_positions"`
					Model    string  `json:"model"`
					Prompt   int     `json:"prompt_tokens"`
				} `json:"data"`
			} `json:"items"`
		}
		// The audit log lists events below the cluster-wide watermark, which
		// another test's transaction may hold back for a moment.
		stacktest.Eventually(t, 30*time.Second, "the ask in the audit log, revealed", func() bool {
			wantStatus(t, s.Do(t, admin, http.MethodGet, "/v1/audit?type=assistant_question_answered", nil, &page), http.StatusOK)
			for _, it := range page.Items {
				if it.Data.Question == "What happened today?" && it.Data.Mode == "ask" && len(it.Data.Cited) == 1 &&
					it.Data.Model == "test-model" && it.Data.Prompt == 50 {
					return true
				}
			}
			return false
		})
	})

	t.Run("the model's failures are problems", func(t *testing.T) {
		ask := func(accept string) stacktest.Response {
			h := []string{}
			if accept != "" {
				h = []string{"Accept", accept}
			}
			return s.Do(t, admin, http.MethodPost, "/v1/assistant/ask", map[string]any{"question": "Why?"}, nil, h...)
		}
		for _, tc := range []struct {
			reply  openaitest.Reply
			status int
			code   string
		}{
			{openaitest.Reply{Status: 500}, http.StatusBadGateway, "assistant_model_error"},
			{openaitest.Reply{Status: 400, ErrorType: "invalid_request_error"}, http.StatusBadGateway, "assistant_model_error"},
			{openaitest.Reply{Status: 429}, http.StatusServiceUnavailable, "assistant_unavailable"},
			{openaitest.Reply{Malformed: true}, http.StatusBadGateway, "assistant_model_error"},
			{openaitest.Reply{Text: "slow", Delay: time.Minute}, http.StatusGatewayTimeout, "assistant_timeout"},
		} {
			model.SetReply(func(openaitest.Request) openaitest.Reply { return tc.reply })
			wantProblem(t, ask(""), tc.status, tc.code)
			wantProblem(t, ask("text/event-stream"), tc.status, tc.code)
		}
		// Broken off after the first chunk: the stream ends with an error.
		for _, rep := range []openaitest.Reply{{Text: "partial answer", ChunkSize: 4, Malformed: true}, {Text: "partial answer", ChunkSize: 4, Cut: true}} {
			model.SetReply(func(openaitest.Request) openaitest.Reply { return rep })
			r := ask("text/event-stream")
			wantStatus(t, r, http.StatusOK)
			evs := sse(t, r.Body)
			if evs[0][0] != "delta" || evs[len(evs)-1][0] != "error" || !strings.Contains(evs[len(evs)-1][1], "assistant_model_error") {
				t.Fatalf("events %v", evs)
			}
		}
		model.SetReply(citeFirst("fine again"))
		wantStatus(t, ask(""), http.StatusOK)
	})
}

// TestAssistantLimits: the tenant's token budget of the day and its rate
// of questions.
func TestAssistantLimits(t *testing.T) {
	model := openaitest.Start(t, modelKey, func(openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Text: "ok", PromptTokens: 80, Completion: 40}
	})
	s := stacktest.Start(t, stacktest.Options{
		Assistant:       assistant.Config{URL: model.BaseURL(), Model: "m", APIKey: modelKey, TokensPerDay: 100},
		AssistantLimits: api.AssistantLimits{Rate: api.RateLimit{N: 3, Window: time.Hour}}})
	tenant := s.Tenant(t, "budget")
	admin := s.Login(t, s.User(t, tenant, auth.RoleTenantAdmin)).AccessToken
	other := s.Login(t, s.User(t, s.Tenant(t, "budget-other"), auth.RoleTenantAdmin)).AccessToken
	ask := func(token string) stacktest.Response {
		return s.Do(t, token, http.MethodPost, "/v1/assistant/ask", map[string]any{"question": "Anything?"}, nil)
	}
	wantStatus(t, ask(admin), http.StatusOK) // 120 tokens: over the budget of 100
	wantProblem(t, ask(admin), http.StatusTooManyRequests, "assistant_budget_exhausted")
	wantStatus(t, ask(other), http.StatusOK) // another tenant's budget is its own
	wantProblem(t, ask(admin), http.StatusTooManyRequests, "assistant_budget_exhausted")
	wantProblem(t, ask(admin), http.StatusTooManyRequests, "rate_limited") // the fourth question within the hour
	if len(model.Requests()) != 2 {
		t.Fatalf("the model was asked %d times, want 2", len(model.Requests()))
	}
}

func decodeInto(t *testing.T, data string, out any) {
	t.Helper()
	if err := json.Unmarshal([]byte(data), out); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
}

// TestAssistantDisabled: without a model every route is 404
// assistant_disabled, whatever the caller's permissions.
func TestAssistantDisabled(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	tenant := s.Tenant(t, "no-assistant")
	admin := s.Login(t, s.User(t, tenant, auth.RoleTenantAdmin)).AccessToken
	wantProblem(t, s.Do(t, admin, http.MethodPost, "/v1/assistant/ask", map[string]any{"question": "?"}, nil), http.StatusNotFound, "assistant_disabled")
	wantProblem(t, s.Do(t, admin, http.MethodPost, "/v1/vms/"+uuid.NewString()+"/explain", nil, nil), http.StatusNotFound, "assistant_disabled")
	wantProblem(t, s.Do(t, admin, http.MethodGet, "/v1/assistant", nil, nil), http.StatusNotFound, "assistant_disabled")
	wantProblem(t, s.Do(t, "", http.MethodPost, "/v1/assistant/ask", map[string]any{"question": "?"}, nil), http.StatusUnauthorized, "unauthenticated")
}
