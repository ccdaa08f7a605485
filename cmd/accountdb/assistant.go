package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/assistant"
)

// bindAssistant registers the assistant's settings (docs/ASSISTANT.md),
// each a flag with an environment variable, except its API key: a secret,
// read from ACCOUNTDB_ASSISTANT_API_KEY only, never a flag (flags show in
// ps) and never logged.
func bindAssistant(fs *flag.FlagSet, c *config) {
	a := &c.Assistant
	fs.StringVar(&a.URL, "assistant-url", env("ACCOUNTDB_ASSISTANT_URL", ""),
		"OpenAI-compatible base URL of the assistant's model, e.g. http://localhost:11434/v1; empty: the assistant is off (env ACCOUNTDB_ASSISTANT_URL)")
	fs.StringVar(&a.Model, "assistant-model", env("ACCOUNTDB_ASSISTANT_MODEL", ""), "the model's name (env ACCOUNTDB_ASSISTANT_MODEL)")
	a.APIKey = os.Getenv("ACCOUNTDB_ASSISTANT_API_KEY")
	dur := func(p *time.Duration, name, envName string, def time.Duration, usage string) {
		c.durationVar(fs, p, name, envName, def, usage)
	}
	num := func(p *int, name, envName string, def int, usage string) { c.intVar(fs, p, name, envName, def, usage) }
	dur(&a.ConnectTimeout, "assistant-connect-timeout", "ACCOUNTDB_ASSISTANT_CONNECT_TIMEOUT", assistant.DefaultConnectTimeout, "time to connect to the model")
	dur(&a.AnswerTimeout, "assistant-answer-timeout", "ACCOUNTDB_ASSISTANT_ANSWER_TIMEOUT", assistant.DefaultAnswerTimeout, "time for the model's whole answer")
	num(&a.MaxEvents, "assistant-max-events", "ACCOUNTDB_ASSISTANT_MAX_EVENTS", assistant.DefaultMaxEvents, "events sent with one question, at most")
	num(&a.MaxBytes, "assistant-max-bytes", "ACCOUNTDB_ASSISTANT_MAX_BYTES", assistant.DefaultMaxBytes, "bytes of events sent with one question, at most")
	tokens := int(assistant.DefaultTokensPerDay)
	num(&tokens, "assistant-tokens-per-day", "ACCOUNTDB_ASSISTANT_TOKENS_PER_DAY", tokens, "model tokens each tenant may use per UTC day")
	c.assistantTokens = &tokens
	l := &c.AssistantLimits
	num(&l.PerUser, "assistant-per-user", "ACCOUNTDB_ASSISTANT_PER_USER", api.DefaultAssistantPerUser, "concurrent assistant answers per user")
	num(&l.PerTenant, "assistant-per-tenant", "ACCOUNTDB_ASSISTANT_PER_TENANT", api.DefaultAssistantPerTenant, "concurrent assistant answers per tenant")
	l.Rate = api.DefaultAssistantRate
	if v := os.Getenv("ACCOUNTDB_ASSISTANT_RATE"); v != "" {
		r, err := api.ParseRateLimit(v)
		if err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("ACCOUNTDB_ASSISTANT_RATE: %w", err))
		}
		l.Rate = r
	}
	fs.Var(rateFlag{&l.Rate}, "assistant-rate", "questions to the assistant per tenant, as requests/window (env ACCOUNTDB_ASSISTANT_RATE)")
}

// assistantConfig is the assistant's configuration once flags are parsed,
// checked: a URL needs a model, and must be http(s).
func (c *config) assistantConfig() (assistant.Config, error) {
	a := c.Assistant
	if c.assistantTokens != nil {
		a.TokensPerDay = int64(*c.assistantTokens)
	}
	if a.URL == "" {
		return a, nil
	}
	u, err := url.Parse(a.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return a, fmt.Errorf("ACCOUNTDB_ASSISTANT_URL must be an http(s) URL such as http://localhost:11434/v1")
	}
	if u.User != nil {
		return a, fmt.Errorf("ACCOUNTDB_ASSISTANT_URL must not hold credentials: put the key in ACCOUNTDB_ASSISTANT_API_KEY")
	}
	if a.Model == "" {
		return a, fmt.Errorf("ACCOUNTDB_ASSISTANT_MODEL is required with ACCOUNTDB_ASSISTANT_URL")
	}
	if a.ConnectTimeout <= 0 || a.AnswerTimeout <= 0 || a.MaxEvents <= 0 || a.MaxBytes <= 0 || a.TokensPerDay <= 0 {
		return a, fmt.Errorf("the assistant's timeouts, event bounds and token budget must be positive")
	}
	return a, nil
}
