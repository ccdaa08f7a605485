package commands

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
)

// The assistant's records and settings (docs/ASSISTANT.md).

// RecordAssistantAnswer appends e to the actor's tenant's assistant stream
// ("assistant-<tenant id>"), sealed like every append: the question and the
// answer with the asker's key. The stream only accumulates facts, so any
// version will do. It answers the event's global position.
func (h *Handler) RecordAssistantAnswer(ctx context.Context, a Actor, e domain.AssistantQuestionAnswered) (int64, error) {
	if a.CorrelationID == uuid.Nil {
		a.CorrelationID = uuid.Must(uuid.NewV7())
	}
	app := eventstore.Append{
		Stream:   eventlog.StreamID{Type: domain.StreamAssistant, ID: a.TenantID},
		TenantID: a.TenantID, Expected: eventstore.Any(),
		ActorID: a.UserID, CorrelationID: a.CorrelationID, Metadata: a.Metadata,
		Events: []eventstore.NewEvent{{Type: e.EventType(), Data: &e}},
	}
	if err := h.seal(ctx, &app); err != nil {
		return 0, fmt.Errorf("record %s: %w", e.EventType(), err)
	}
	res, err := h.store.Append(ctx, app)
	if err != nil {
		return 0, fmt.Errorf("record %s: %w", e.EventType(), err)
	}
	return res.LastPosition, nil
}

// SetTenantPrivacy sets tenant id's retention of request metadata and,
// unless shareIPs is nil, whether the assistant may send the model its
// events' client IPs and user agents (PUT /v1/tenants/{id}/privacy).
func (h *Handler) SetTenantPrivacy(ctx context.Context, a Actor, o Options, id uuid.UUID, days int, shareIPs *bool) (Result, error) {
	return h.onTenant(ctx, a, o, id, func(t *domain.Tenant) ([]domain.Event, error) { return t.SetPrivacy(days, shareIPs) })
}

// AssistantSharesIPs says whether tenant lets the assistant send request
// metadata (the platform tenant, without a stream, does not).
func (h *Handler) AssistantSharesIPs(ctx context.Context, tenant uuid.UUID) (bool, error) {
	if tenant == domain.PlatformTenant {
		return false, nil
	}
	t, err := h.LoadTenant(ctx, tenant)
	if err != nil {
		return false, err
	}
	return t.AssistantShareIPs, nil
}
