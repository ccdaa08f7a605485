package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/accountdb/accountdb/assistant"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/go-chi/chi/v5"
)

// The assistant (docs/ASSISTANT.md): POST /v1/vms/{id}/explain and POST
// /v1/assistant/ask answer a question about the caller's tenant's events
// with the configured model, as JSON or, with Accept: text/event-stream, as
// Server-Sent Events (delta, citations, done). Without a configured model
// every route answers 404 assistant_disabled.

// AssistantLimits bound the assistant: a per-tenant rate of questions and
// caps on answers in progress per user and per tenant (zero: the defaults).
type AssistantLimits struct {
	Rate               RateLimit
	PerUser, PerTenant int
}

// DefaultAssistantRate is the default per-tenant rate of questions.
var DefaultAssistantRate = RateLimit{N: 30, Window: time.Minute}

// Default caps on answers in progress.
const (
	DefaultAssistantPerUser   = 2
	DefaultAssistantPerTenant = 8
)

// The assistant's problem codes (API.md, "Assistant").
const (
	CodeAssistantDisabled    = "assistant_disabled"         // 404, no model configured
	CodeAssistantBudget      = "assistant_budget_exhausted" // 429, the tenant's tokens of the day are used up
	CodeAssistantModelError  = "assistant_model_error"      // 502, the model answered an error or garbage
	CodeAssistantUnavailable = "assistant_unavailable"      // 503, the model cannot be reached or is overloaded
	CodeAssistantTimeout     = "assistant_timeout"          // 504, no connection or no whole answer in time
)

type explainRequest struct {
	Question string `json:"question"`
}

type askRequest struct {
	Question string `json:"question"`
	Since    string `json:"since"`
	Until    string `json:"until"`
}

type assistantAnswer struct {
	Answer    string  `json:"answer"`
	Citations []int64 `json:"citations"`
}

// mountAssistant installs the assistant's routes, behind the disabled
// check, the per-tenant rate and the permission.
func (srv *server) mountAssistant(r chi.Router, d *V1) {
	rate := d.AssistantLimits.Rate.or(DefaultAssistantRate)
	srv.assistantSlots = newSlots("assistant", "assistant answers", orInt(d.AssistantLimits.PerUser, DefaultAssistantPerUser),
		orInt(d.AssistantLimits.PerTenant, DefaultAssistantPerTenant), d.Slots)
	// Whether the feature is on (the console shows it or not): any
	// signed-in user may ask, outside the rate of questions.
	r.With(srv.assistantEnabled).Get("/v1/assistant", srv.assistantStatus)
	r.Group(func(r chi.Router) {
		r.Use(srv.assistantEnabled, SharedRateLimitByKey(d.RateCounter, rate.N, rate.Window, func(r *http.Request) (string, error) {
			return "assistant:tenant:" + PrincipalFrom(r.Context()).TenantID.String(), nil
		}))
		r.With(srv.require(auth.PermVMRead)).Post("/v1/vms/{id}/explain", srv.explainVM)
		r.With(srv.require(auth.PermAuditRead)).Post("/v1/assistant/ask", srv.askAssistant)
	})
}

func orInt(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

// assistantEnabled answers 404 assistant_disabled when no model is
// configured, before any other check: the feature does not exist.
func (srv *server) assistantEnabled(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if srv.assistant == nil {
			WriteError(w, r, assistant.ErrDisabled)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// assistantStatus: GET /v1/assistant, 200 {enabled: true} (the disabled
// check answers 404 assistant_disabled before it).
func (srv *server) assistantStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"enabled": true})
}

func (srv *server) explainVM(w http.ResponseWriter, r *http.Request) {
	vid, ok := pathUUID(w, r, "id")
	if !ok {
		return
	}
	var req explainRequest
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		if err := DecodeJSON(w, r, &req); err != nil {
			WriteError(w, r, err)
			return
		}
	}
	srv.answer(w, r, assistant.Question{Mode: domain.AssistantExplain, VMID: vid, Text: req.Question})
}

func (srv *server) askAssistant(w http.ResponseWriter, r *http.Request) {
	var req askRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		WriteError(w, r, err)
		return
	}
	q := assistant.Question{Mode: domain.AssistantAsk, Text: req.Question}
	var fe FieldErrors
	instant := func(name, v string) time.Time {
		if v == "" {
			return time.Time{}
		}
		t, err := parseInstant(v)
		if err != nil {
			fe.Add(name, "must be an RFC 3339 date-time, e.g. 2024-05-01T12:00:00Z")
		}
		return t
	}
	q.Since, q.Until = instant("since", req.Since), instant("until", req.Until)
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		fe.Add("until", "must not be before since")
	}
	if err := fe.Err(); err != nil {
		WriteError(w, r, err)
		return
	}
	srv.answer(w, r, q)
}

// answer runs q for the caller, holding one of their assistant slots.
func (srv *server) answer(w http.ResponseWriter, r *http.Request, q assistant.Question) {
	p := PrincipalFrom(r.Context())
	release, ok := srv.assistantSlots.acquire(w, r, p)
	if !ok {
		return
	}
	defer release()
	q.Actor = actorOf(r)
	// The server's write timeout is for ordinary answers; this one may take
	// the model's whole answer time.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(srv.assistant.AnswerTimeout() + 15*time.Second))
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		srv.streamAnswer(w, r, q)
		return
	}
	a, err := srv.assistant.Answer(r.Context(), q, nil)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, assistantAnswer{Answer: a.Text, Citations: a.Citations})
}

// streamAnswer answers as Server-Sent Events. Nothing is written before the
// model's first piece of text: an error until then is an ordinary problem
// answer. An error after it ends the stream with `event: error` carrying
// the problem, and no `done`.
func (srv *server) streamAnswer(w http.ResponseWriter, r *http.Request, q assistant.Question) {
	rc := http.NewResponseController(w)
	started := false
	send := func(event string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	start := func() {
		if started {
			return
		}
		started = true
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
	}
	a, err := srv.assistant.Answer(r.Context(), q, func(text string) error {
		start()
		return send("delta", map[string]string{"text": text})
	})
	if err != nil {
		if !started {
			WriteError(w, r, err)
			return
		}
		pr := problemFor(r, err)
		_ = send("error", map[string]any{"status": pr.Status, "code": pr.Code, "title": http.StatusText(pr.Status), "detail": pr.Detail})
		return
	}
	start() // an empty answer still gets its citations and done
	_ = send("citations", map[string][]int64{"citations": a.Citations})
	_ = send("done", map[string]any{"position": a.Position})
}

// assistantErrors are the assistant's rows of the error table.
func assistantErrors() []ErrorMapping {
	return []ErrorMapping{
		{Target: assistant.ErrDisabled, Problem: Static(Problem{Status: http.StatusNotFound, Code: CodeAssistantDisabled,
			Detail: "the assistant is not configured on this server"})},
		{Target: assistant.ErrBudgetExhausted, Problem: Static(Problem{Status: http.StatusTooManyRequests, Code: CodeAssistantBudget,
			Detail: "the tenant's assistant token budget for today is used up; it renews at midnight UTC"})},
		{Target: assistant.ErrModelTimeout, Problem: Static(Problem{Status: http.StatusGatewayTimeout, Code: CodeAssistantTimeout,
			Detail: "the assistant's model did not answer in time"})},
		{Target: assistant.ErrModelUnavailable, Problem: Static(Problem{Status: http.StatusServiceUnavailable, Code: CodeAssistantUnavailable,
			Detail: "the assistant's model cannot be reached or is overloaded; try again later"})},
		{Target: assistant.ErrModelFailed, Problem: Static(Problem{Status: http.StatusBadGateway, Code: CodeAssistantModelError,
			Detail: "the assistant's model answered with an error"})},
	}
}
