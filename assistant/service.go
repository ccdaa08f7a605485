package assistant

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
)

// Events reads a tenant's events through row-level security: the most
// recent ones matching a filter, oldest first (eventstore.Store).
type Events interface {
	AuditLatest(ctx context.Context, sc tenantdb.Scope, f eventstore.AuditFilter, limit int) ([]eventlog.Event, error)
}

// Recorder records answers and reads the tenant's setting (commands.Handler).
type Recorder interface {
	RecordAssistantAnswer(ctx context.Context, a commands.Actor, e domain.AssistantQuestionAnswered) (int64, error)
	AssistantSharesIPs(ctx context.Context, tenant uuid.UUID) (bool, error)
}

// MaxQuestion bounds a question, in characters.
const MaxQuestion = 2000

// DefaultExplainQuestion is asked by an explain without a question.
const DefaultExplainQuestion = "Explain this VM's history: what happened to it, in order, and why it is in its current state."

// Service answers questions; a nil *Service is the feature off.
type Service struct {
	cfg    Config
	client *client
	events Events
	rec    Recorder
	budget Budget
	log    *slog.Logger
}

// New returns the service, or nil when cfg leaves the feature off.
func New(cfg Config, events Events, rec Recorder, budget Budget, log *slog.Logger) *Service {
	if !cfg.Enabled() {
		return nil
	}
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.WithDefaults()
	return &Service{cfg: cfg, client: newClient(cfg), events: events, rec: rec, budget: budget, log: log}
}

// AnswerTimeout is how long one answer may take.
func (s *Service) AnswerTimeout() time.Duration { return s.cfg.AnswerTimeout }

// Question is one question: an explain of a VM or an ask over the tenant.
type Question struct {
	Actor commands.Actor // the asker: their tenant is the only one read
	Mode  string         // domain.AssistantExplain or AssistantAsk
	VMID  uuid.UUID      // explain: the VM
	Text  string
	// Since and Until bound an ask's events by recorded time (zero: none).
	Since, Until time.Time
}

// Answer is the model's answer with the citations kept.
type Answer struct {
	Text      string
	Citations []int64
	// Position is the recorded assistant_question_answered's.
	Position int64
	Model    string
	Usage    Usage
}

// Answer answers q. With onDelta the model's answer is streamed and each
// piece handed to onDelta as it comes. An error before any piece came is
// one of the package's errors (or the domain's: an unknown VM, a bad
// question) and nothing was recorded; once the model was asked, the
// question is recorded, answered or failed.
func (s *Service) Answer(ctx context.Context, q Question, onDelta func(string) error) (Answer, error) {
	if s == nil {
		return Answer{}, ErrDisabled
	}
	if q.Mode == domain.AssistantExplain && strings.TrimSpace(q.Text) == "" {
		q.Text = DefaultExplainQuestion
	}
	switch n := utf8.RuneCountInString(q.Text); {
	case strings.TrimSpace(q.Text) == "":
		return Answer{}, &domain.ValidationError{Fields: map[string]string{"question": "is required"}}
	case n > MaxQuestion:
		return Answer{}, &domain.ValidationError{Fields: map[string]string{"question": fmt.Sprintf("must be at most %d characters", MaxQuestion)}}
	}
	tenant := q.Actor.TenantID
	used, err := s.budget.Used(ctx, tenant)
	if err != nil {
		return Answer{}, err
	}
	if used >= s.cfg.TokensPerDay {
		return Answer{}, ErrBudgetExhausted
	}
	shareIPs, err := s.rec.AssistantSharesIPs(ctx, tenant)
	if err != nil {
		return Answer{}, err
	}
	lines, sent, err := s.selectEvents(ctx, q, shareIPs)
	if err != nil {
		return Answer{}, err
	}
	msgs := []message{{Role: "system", Content: systemPrompt(q.Mode, time.Now())},
		{Role: "user", Content: userPrompt(q, lines)}}

	actx, cancel := context.WithTimeout(ctx, s.cfg.AnswerTimeout)
	text, usage, err := s.client.complete(actx, msgs, onDelta)
	cancel()
	if err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "assistant: the model failed", "mode", q.Mode, "err", err)
	}
	ans := Answer{Text: text, Citations: citations(text, sent), Model: s.cfg.Model, Usage: usage}
	s.account(ctx, tenant, usage, msgs, text)
	outcome := "answered"
	if err != nil {
		outcome = "failed"
	}
	pos, rerr := s.record(ctx, q, ans, sent, outcome)
	if err != nil {
		return ans, err
	}
	if rerr != nil {
		return ans, rerr
	}
	ans.Position = pos
	return ans, nil
}

// selectEvents reads the events the question is about, most recent first
// kept, and returns them as sent (oldest first) and the set of their
// positions. Only the asker's tenant is read, under its RLS scope.
func (s *Service) selectEvents(ctx context.Context, q Question, shareIPs bool) ([]string, map[int64]bool, error) {
	f := eventstore.AuditFilter{TenantID: q.Actor.TenantID, Since: q.Since, Until: q.Until}
	if q.Mode == domain.AssistantExplain {
		st := eventlog.StreamID{Type: domain.StreamVM, ID: q.VMID}
		f = eventstore.AuditFilter{TenantID: q.Actor.TenantID, Stream: &st}
	}
	sc := tenantdb.Scope{TenantID: q.Actor.TenantID, ActorID: q.Actor.UserID}
	evs, err := s.events.AuditLatest(ctx, sc, f, s.cfg.MaxEvents)
	if err != nil {
		return nil, nil, err
	}
	if q.Mode == domain.AssistantExplain && len(evs) == 0 {
		return nil, nil, domain.ErrNotFound // no such VM in the asker's tenant
	}
	// Newest first, until the byte budget is spent; then back in order.
	var lines []string
	size := 0
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		if e.Stream.Type == domain.StreamAssistant || e.TenantID != q.Actor.TenantID {
			continue // earlier answers are not evidence; RLS already kept other tenants out
		}
		l := string(redactEvent(e, shareIPs))
		if size+len(l)+1 > s.cfg.MaxBytes {
			break
		}
		size += len(l) + 1
		lines = append(lines, l)
	}
	sent := make(map[int64]bool, len(lines))
	for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
		lines[i], lines[j] = lines[j], lines[i]
	}
	for _, l := range lines {
		sent[positionOf(l)] = true
	}
	return lines, sent, nil
}

// account counts the answer's tokens against the tenant's budget: the
// model's usage, or when it reported none an estimate (4 bytes a token).
func (s *Service) account(ctx context.Context, tenant uuid.UUID, u Usage, msgs []message, answer string) {
	n := int64(u.TotalTokens)
	if n == 0 {
		n = int64(u.PromptTokens + u.CompletionTokens)
	}
	if n == 0 {
		for _, m := range msgs {
			n += int64(len(m.Content))
		}
		n = (n + int64(len(answer)) + 3) / 4
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.budget.Add(bctx, tenant, n); err != nil {
		s.log.ErrorContext(ctx, "assistant: counting tokens", "err", err)
	}
}

func (s *Service) record(ctx context.Context, q Question, a Answer, sent map[int64]bool, outcome string) (int64, error) {
	e := domain.AssistantQuestionAnswered{UserID: q.Actor.UserID, Mode: q.Mode, Question: q.Text, Answer: a.Text,
		Sent: sortedPositions(sent), Cited: a.Citations, Model: a.Model,
		PromptTokens: a.Usage.PromptTokens, CompletionTokens: a.Usage.CompletionTokens, Outcome: outcome}
	if q.Mode == domain.AssistantExplain {
		id := q.VMID
		e.VMID = &id
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	pos, err := s.rec.RecordAssistantAnswer(rctx, q.Actor, e)
	if err != nil {
		s.log.ErrorContext(ctx, "assistant: recording the answer", "err", err)
		return 0, err
	}
	return pos, nil
}
