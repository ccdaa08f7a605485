package commands

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
)

// Webhook endpoints (docs/EVENTS.md, "Webhooks"). An endpoint is an
// aggregate in its tenant; a platform-wide one is in the platform tenant.
// Its signing secret is generated here, answered once, and stored only
// sealed in the events (like a cluster's token secret), bound to the
// endpoint's id.

// WebhookSecretPrefix starts every signing secret (Standard Webhooks).
const WebhookSecretPrefix = "whsec_"

// MaxWebhookOverlap bounds how long a rotated-out secret still signs.
const MaxWebhookOverlap = 7 * 24 * time.Hour

// DefaultWebhookOverlap is the overlap when a rotation names none.
const DefaultWebhookOverlap = 24 * time.Hour

func webhookStream(id uuid.UUID) eventlog.StreamID {
	return eventlog.StreamID{Type: domain.StreamWebhook, ID: id}
}

// newWebhookSecret is whsec_ and 32 random bytes in standard base64.
func newWebhookSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return WebhookSecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// WebhookChange is an endpoint's configuration as a request gives it: on
// an update, nil fields are kept.
type WebhookChange struct {
	URL, Description *string
	EventTypes       *[]string
	Enabled          *bool
}

func (c WebhookChange) apply(cfg domain.WebhookConfig) domain.WebhookConfig {
	if c.URL != nil {
		cfg.URL = *c.URL
	}
	if c.Description != nil {
		cfg.Description = *c.Description
	}
	if c.EventTypes != nil {
		cfg.EventTypes = *c.EventTypes
	}
	if c.Enabled != nil {
		cfg.Enabled = *c.Enabled
	}
	return cfg
}

// CreatedWebhook is a new endpoint and its secret, shown this once.
type CreatedWebhook struct {
	Result
	Secret string
	// PreviousValidUntil: after a rotation, until when the old secret signs.
	PreviousValidUntil time.Time
}

// CreateWebhook registers an endpoint in the actor's tenant, or, with
// platform (platform admins only: the route checks), one that receives
// every tenant's events.
func (h *Handler) CreateWebhook(ctx context.Context, a Actor, o Options, c WebhookChange, platform bool) (CreatedWebhook, error) {
	if h.vault == nil {
		return CreatedWebhook{}, ErrNoVault
	}
	tenant := a.TenantID
	if platform {
		tenant = domain.PlatformTenant
	}
	id := uuid.Must(uuid.NewV7())
	if o.IdempotencyKey != "" {
		id = commandID(a, "webhook:"+o.IdempotencyKey)
	}
	secret, err := newWebhookSecret()
	if err != nil {
		return CreatedWebhook{}, err
	}
	res, err := h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		w := &domain.Webhook{ID: id}
		if _, err := h.loadInto(ctx, tenant, webhookStream(id), w); err != nil {
			return change{}, err
		}
		if w.Version > 0 {
			return change{}, domain.ErrConflict
		}
		cfg, err := domain.ValidateWebhook(c.apply(domain.WebhookConfig{Enabled: true}), h.devHTTP)
		if err != nil {
			return change{}, err
		}
		sealed, err := h.vault.Seal(secret, domain.WebhookSecretBinding(id))
		if err != nil {
			return change{}, err
		}
		return change{tenant: tenant, stream: webhookStream(id), events: []domain.Event{&domain.WebhookCreated{URL: cfg.URL,
			EventTypes: cfg.EventTypes, Description: cfg.Description, Enabled: cfg.Enabled, Platform: platform, SealedSecret: sealed}}}, nil
	})
	if err != nil {
		return CreatedWebhook{}, err
	}
	if res.Replayed {
		// The first answer carried the secret; a repeat cannot show it again.
		secret = ""
	}
	return CreatedWebhook{Result: res, Secret: secret}, nil
}

// webhookChange loads the actor's tenant's endpoint id and decides on it.
func (h *Handler) webhookChange(ctx context.Context, a Actor, o Options, id uuid.UUID,
	decide func(w *domain.Webhook) ([]domain.Event, error)) (Result, error) {
	return h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		w := &domain.Webhook{ID: id}
		if _, err := h.loadInto(ctx, a.TenantID, webhookStream(id), w); err != nil {
			return change{}, err
		}
		if !w.Exists() {
			return change{}, domain.ErrNotFound
		}
		evs, err := decide(w)
		if err != nil {
			return change{}, err
		}
		return change{tenant: a.TenantID, stream: webhookStream(id), version: w.Version, events: evs}, nil
	})
}

// UpdateWebhook changes the fields c sets; enabling clears the reason it
// was disabled for.
func (h *Handler) UpdateWebhook(ctx context.Context, a Actor, o Options, id uuid.UUID, c WebhookChange) (Result, error) {
	return h.webhookChange(ctx, a, o, id, func(w *domain.Webhook) ([]domain.Event, error) {
		cfg, err := domain.ValidateWebhook(c.apply(w.Config), h.devHTTP)
		if err != nil {
			return nil, err
		}
		return []domain.Event{&domain.WebhookUpdated{URL: cfg.URL, EventTypes: cfg.EventTypes, Description: cfg.Description, Enabled: cfg.Enabled}}, nil
	})
}

// DeleteWebhook removes an endpoint; its durable consumer goes with it.
func (h *Handler) DeleteWebhook(ctx context.Context, a Actor, o Options, id uuid.UUID) (Result, error) {
	return h.webhookChange(ctx, a, o, id, func(*domain.Webhook) ([]domain.Event, error) {
		return []domain.Event{&domain.WebhookDeleted{}}, nil
	})
}

// ErrInvalidOverlap: an overlap outside 0..MaxWebhookOverlap. HTTP 400.
var ErrInvalidOverlap = &domain.ValidationError{Fields: map[string]string{"overlap_seconds": "must be between 0 and 604800"}}

// RotateWebhookSecret gives the endpoint a new secret, answered once; the
// old one keeps signing (a second signature) for overlap.
func (h *Handler) RotateWebhookSecret(ctx context.Context, a Actor, o Options, id uuid.UUID, overlap time.Duration) (CreatedWebhook, error) {
	if h.vault == nil {
		return CreatedWebhook{}, ErrNoVault
	}
	if overlap < 0 || overlap > MaxWebhookOverlap {
		return CreatedWebhook{}, ErrInvalidOverlap
	}
	secret, err := newWebhookSecret()
	if err != nil {
		return CreatedWebhook{}, err
	}
	until := h.now().Add(overlap).UTC().Truncate(time.Second)
	res, err := h.webhookChange(ctx, a, o, id, func(*domain.Webhook) ([]domain.Event, error) {
		sealed, err := h.vault.Seal(secret, domain.WebhookSecretBinding(id))
		if err != nil {
			return nil, err
		}
		return []domain.Event{&domain.WebhookSecretRotated{SealedSecret: sealed, PreviousValidUntil: until}}, nil
	})
	if err != nil {
		return CreatedWebhook{}, err
	}
	if res.Replayed {
		secret = ""
	}
	return CreatedWebhook{Result: res, Secret: secret, PreviousValidUntil: until}, nil
}

// ReplayWebhook sends every event from global position from on again.
func (h *Handler) ReplayWebhook(ctx context.Context, a Actor, o Options, id uuid.UUID, from int64) (Result, error) {
	if from < 1 {
		return Result{}, &domain.ValidationError{Fields: map[string]string{"from_position": "must be a positive log position"}}
	}
	return h.webhookChange(ctx, a, o, id, func(*domain.Webhook) ([]domain.Event, error) {
		return []domain.Event{&domain.WebhookReplayRequested{FromPosition: from}}, nil
	})
}

// RedeliverWebhook sends the event of one earlier delivery again (the
// caller found the delivery among the endpoint's).
func (h *Handler) RedeliverWebhook(ctx context.Context, a Actor, o Options, id, delivery uuid.UUID, eventTenant uuid.UUID, position int64) (Result, error) {
	return h.webhookChange(ctx, a, o, id, func(*domain.Webhook) ([]domain.Event, error) {
		return []domain.Event{&domain.WebhookRedeliveryRequested{DeliveryID: delivery, EventPosition: position, EventTenantID: eventTenant}}, nil
	})
}

// ErrWebhookGone: the endpoint to disable was deleted or disabled already
// (domain.ErrWebhookNotEnabled).
var ErrWebhookGone = domain.ErrWebhookNotEnabled

// DisableWebhook is the dispatcher's: delivery to tenant's endpoint id gave
// up, for reason, at the event at position. A system actor records it.
func (h *Handler) DisableWebhook(ctx context.Context, tenant, id uuid.UUID, reason string, position int64) error {
	a := Actor{TenantID: tenant}
	_, err := h.webhookChange(ctx, a, Options{}, id, func(w *domain.Webhook) ([]domain.Event, error) {
		if !w.Config.Enabled {
			return nil, ErrWebhookGone
		}
		return []domain.Event{&domain.WebhookDisabled{Reason: reason, EventPosition: position}}, nil
	})
	if errors.Is(err, domain.ErrNotFound) {
		return ErrWebhookGone
	}
	return err
}
