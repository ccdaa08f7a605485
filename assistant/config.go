// Package assistant answers questions about a tenant's history with an
// OpenAI-compatible chat completions endpoint (NVIDIA NIM, vLLM, Ollama, a
// hosted service): it selects the tenant's relevant events itself, through
// row-level security, redacts what must not leave (secrets, personal data,
// request metadata unless the tenant allows it), sends them with a system
// prompt, keeps only the citations of events it sent, and records every
// question and answer as an event. docs/ASSISTANT.md has the whole story.
package assistant

import (
	"errors"
	"time"
)

// Config is the assistant's configuration (ACCOUNTDB_ASSISTANT_*). An empty
// URL turns the feature off.
type Config struct {
	// URL is the OpenAI-compatible base URL, the part before
	// /chat/completions (e.g. http://localhost:11434/v1 for Ollama).
	URL   string
	Model string
	// APIKey is sent as a bearer token (a secret: environment only, never
	// logged, never recorded). Empty: no Authorization header.
	APIKey string
	// ConnectTimeout bounds dialling the model and its TLS handshake;
	// AnswerTimeout the whole answer, streamed or not.
	ConnectTimeout, AnswerTimeout time.Duration
	// MaxEvents and MaxBytes bound the events sent with one question: the
	// most recent ones, fewest first dropped to fit.
	MaxEvents, MaxBytes int
	// MaxAnswerTokens is the model's max_tokens.
	MaxAnswerTokens int
	// TokensPerDay is each tenant's budget of model tokens (prompt and
	// completion) per UTC day.
	TokensPerDay int64
}

// Defaults of Config's zero fields.
const (
	DefaultConnectTimeout  = 5 * time.Second
	DefaultAnswerTimeout   = 120 * time.Second
	DefaultMaxEvents       = 200
	DefaultMaxBytes        = 96 << 10
	DefaultMaxAnswerTokens = 1024
	DefaultTokensPerDay    = 200_000
)

// Enabled reports whether the feature is configured.
func (c Config) Enabled() bool { return c.URL != "" }

// WithDefaults is c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	or := func(v, d int) int {
		if v <= 0 {
			return d
		}
		return v
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.AnswerTimeout <= 0 {
		c.AnswerTimeout = DefaultAnswerTimeout
	}
	c.MaxEvents = min(or(c.MaxEvents, DefaultMaxEvents), 10000)
	c.MaxBytes = or(c.MaxBytes, DefaultMaxBytes)
	c.MaxAnswerTokens = or(c.MaxAnswerTokens, DefaultMaxAnswerTokens)
	if c.TokensPerDay <= 0 {
		c.TokensPerDay = DefaultTokensPerDay
	}
	return c
}

// Errors of the assistant; api/errors.go answers each with its problem.
var (
	// ErrDisabled: the feature is not configured. HTTP 404 assistant_disabled.
	ErrDisabled = errors.New("the assistant is not configured")
	// ErrBudgetExhausted: the tenant's tokens of the day are used up. HTTP 429.
	ErrBudgetExhausted = errors.New("the tenant's assistant token budget for today is used up")
	// ErrModelUnavailable: the model could not be reached, or said it is
	// overloaded. HTTP 503.
	ErrModelUnavailable = errors.New("the assistant's model is unavailable")
	// ErrModelFailed: the model answered with an error or with something
	// that is not a chat completion. HTTP 502.
	ErrModelFailed = errors.New("the assistant's model failed")
	// ErrModelTimeout: no connection, or no whole answer, in time. HTTP 504.
	ErrModelTimeout = errors.New("the assistant's model did not answer in time")
)
