package domain

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// StreamWebhook is the stream type of a webhook endpoint, "webhook-<id>" in
// its tenant (the platform tenant for platform-wide endpoints).
const StreamWebhook = "webhook"

// ErrWebhookNotEnabled: an endpoint to disable is deleted or disabled
// already.
var ErrWebhookNotEnabled = errors.New("webhook endpoint gone or disabled already")

// MaxWebhooksPerTenant bounds a tenant's endpoints (each is a consumer
// and a worker in every core).
const MaxWebhooksPerTenant = 50

// WebhookSecretBinding is what an endpoint's signing secret is sealed with:
// a sealed secret copied to another endpoint does not open.
func WebhookSecretBinding(id uuid.UUID) string { return "webhook " + id.String() }

// Webhook events. Secrets travel only sealed (vault), like a cluster's
// token secret: never in clear in an event, a log or on the bus.
type (
	// WebhookCreated registers an endpoint. Platform endpoints (in the
	// platform tenant) receive every tenant's events.
	WebhookCreated struct {
		URL          string   `json:"url"`
		EventTypes   []string `json:"event_types"`
		Description  string   `json:"description"`
		Enabled      bool     `json:"enabled"`
		Platform     bool     `json:"platform"`
		SealedSecret string   `json:"sealed_secret"`
	}
	// WebhookUpdated records the endpoint's whole new configuration.
	WebhookUpdated struct {
		URL         string   `json:"url"`
		EventTypes  []string `json:"event_types"`
		Description string   `json:"description"`
		Enabled     bool     `json:"enabled"`
	}
	// WebhookSecretRotated replaces the signing secret; until
	// PreviousValidUntil deliveries carry a signature with the old one too.
	WebhookSecretRotated struct {
		SealedSecret       string    `json:"sealed_secret"`
		PreviousValidUntil time.Time `json:"previous_valid_until"`
	}
	// WebhookDisabled records that delivery gave up (retries exhausted, the
	// endpoint answered 410 Gone) and why.
	WebhookDisabled struct {
		Reason        string `json:"reason"`
		EventPosition int64  `json:"event_position"`
	}
	WebhookDeleted struct{}
	// WebhookReplayRequested sends again every event from a global
	// position on (and then carries on live).
	WebhookReplayRequested struct {
		FromPosition int64 `json:"from_position"`
	}
	// WebhookRedeliveryRequested asks for one event to be sent again.
	WebhookRedeliveryRequested struct {
		DeliveryID    uuid.UUID `json:"delivery_id"`
		EventPosition int64     `json:"event_position"`
		EventTenantID uuid.UUID `json:"event_tenant_id"`
	}
)

func (WebhookCreated) EventType() string             { return "webhook_created" }
func (WebhookUpdated) EventType() string             { return "webhook_updated" }
func (WebhookSecretRotated) EventType() string       { return "webhook_secret_rotated" }
func (WebhookDisabled) EventType() string            { return "webhook_disabled" }
func (WebhookDeleted) EventType() string             { return "webhook_deleted" }
func (WebhookReplayRequested) EventType() string     { return "webhook_replay_requested" }
func (WebhookRedeliveryRequested) EventType() string { return "webhook_redelivery_requested" }

var webhookEvents = []func() Event{
	func() Event { return &WebhookCreated{} },
	func() Event { return &WebhookUpdated{} },
	func() Event { return &WebhookSecretRotated{} },
	func() Event { return &WebhookDisabled{} },
	func() Event { return &WebhookDeleted{} },
	func() Event { return &WebhookReplayRequested{} },
	func() Event { return &WebhookRedeliveryRequested{} },
}

// WebhookConfig is what a tenant admin sets on an endpoint.
type WebhookConfig struct {
	URL         string
	EventTypes  []string
	Description string
	Enabled     bool
}

// Webhook is an endpoint's state.
type Webhook struct {
	ID             uuid.UUID
	Config         WebhookConfig
	Platform       bool
	DisabledReason string
	Deleted        bool
	Version        int64
}

// Exists reports whether the endpoint was created and not deleted.
func (w *Webhook) Exists() bool { return w.Version > 0 && !w.Deleted }

// Apply mutates the endpoint by one recorded event.
func (w *Webhook) Apply(e Event, _ time.Time) {
	switch e := e.(type) {
	case *WebhookCreated:
		w.Config = WebhookConfig{URL: e.URL, EventTypes: e.EventTypes, Description: e.Description, Enabled: e.Enabled}
		w.Platform = e.Platform
	case *WebhookUpdated:
		w.Config = WebhookConfig{URL: e.URL, EventTypes: e.EventTypes, Description: e.Description, Enabled: e.Enabled}
		if e.Enabled {
			w.DisabledReason = ""
		}
	case *WebhookDisabled:
		w.Config.Enabled = false
		w.DisabledReason = e.Reason
	case *WebhookDeleted:
		w.Deleted = true
	}
	w.Version++
}

// eventTypePattern is one filter: an event type, or a prefix ending in *
// ("vm_*"), or "*" for everything.
var eventTypePattern = regexp.MustCompile(`^([a-z][a-z0-9_.]{0,62})?\*?$`)

// ValidateWebhook checks and normalises a configuration: an https URL
// without credentials or fragment (http to a loopback address only when
// allowLoopbackHTTP, for development), 1 to 50 event type filters
// (sorted, without repeats), a description of at most 500 characters.
// Where the URL resolves to is checked when delivering (webhooks.Guard),
// since DNS may answer differently then.
func ValidateWebhook(c WebhookConfig, allowLoopbackHTTP bool) (WebhookConfig, error) {
	f := fieldErrors{}
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "" || len(c.URL) > 2000 || err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "":
		f.add("url", "must be an absolute https URL without credentials or fragment (at most 2000 characters)")
	case u.Scheme != "https" && !(allowLoopbackHTTP && u.Scheme == "http" && isLoopback(u.Hostname())):
		f.add("url", "must use https")
	}
	types := []string{}
	for _, t := range c.EventTypes {
		if t == "" || !eventTypePattern.MatchString(t) {
			f.add("event_types", "each filter is an event type or a prefix ending in * (lower case)")
			continue
		}
		if !strings.HasSuffix(t, "*") && !KnownEventType(t) {
			f.add("event_types", "unknown event type "+t)
			continue
		}
		types = append(types, t)
	}
	slices.Sort(types)
	types = slices.Compact(types)
	if len(types) == 0 || len(types) > 50 {
		f.add("event_types", "1 to 50 filters are required (\"*\" for every event)")
	}
	c.EventTypes = types
	c.Description = strings.TrimSpace(c.Description)
	if utf8.RuneCountInString(c.Description) > 500 || strings.ContainsFunc(c.Description, func(r rune) bool { return isControl(r) && r != '\n' }) {
		f.add("description", "at most 500 characters without control characters")
	}
	return c, f.err()
}

// WebhookWants reports whether an endpoint filtering on patterns receives
// an event of eventType.
func WebhookWants(patterns []string, eventType string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(eventType, prefix) {
				return true
			}
		} else if p == eventType {
			return true
		}
	}
	return false
}
