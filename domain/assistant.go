package domain

import "github.com/google/uuid"

// StreamAssistant is a tenant's assistant stream: "assistant-<tenant id>" in
// that tenant, one assistant_question_answered per question answered
// (docs/ASSISTANT.md). It has no aggregate state: appends take any version.
const StreamAssistant = "assistant"

// Assistant modes: which route asked.
const (
	AssistantExplain = "explain" // POST /v1/vms/{id}/explain
	AssistantAsk     = "ask"     // POST /v1/assistant/ask
)

// AssistantQuestionAnswered records one question put to the assistant and
// its answer. Question and answer are the asker's words and what the model
// made of them, so both are personal data of the asker (UserID), sealed
// with their key (personal.go): erasing the user erases them. The events
// sent to the model are named by their positions only.
type AssistantQuestionAnswered struct {
	UserID   uuid.UUID  `json:"user_id"`
	Mode     string     `json:"mode"`
	VMID     *uuid.UUID `json:"vm_id,omitempty"`
	Question string     `json:"question"`
	Answer   string     `json:"answer"`
	// Sent are the positions of the events sent as context; Cited those of
	// them the answer cites.
	Sent  []int64 `json:"sent_positions"`
	Cited []int64 `json:"cited_positions"`
	Model string  `json:"model"`
	// Token usage as the model reported it (0 when it reported none).
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	// Outcome: "answered", or "failed" when the model's answer broke off
	// (a stream cut, a timeout) after part of it was sent.
	Outcome string `json:"outcome"`
}

func (AssistantQuestionAnswered) EventType() string { return "assistant_question_answered" }

var assistantEvents = []func() Event{
	func() Event { return &AssistantQuestionAnswered{} },
}
