package projections

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/jackc/pgx/v5"
)

// Webhooks keeps the webhooks read model (each endpoint's configuration,
// sealed secrets and where its delivery starts) and webhook_redeliveries
// (redeliveries asked for), from the webhook_* events. The dispatcher
// (package webhooks) reads both.
type Webhooks struct{}

var _ Projector = Webhooks{}

// Name implements Projector.
func (Webhooks) Name() string { return "webhooks" }

// Tables implements Projector.
func (Webhooks) Tables() []string { return []string{"webhooks", "webhook_redeliveries"} }

// EventTypes implements Projector.
func (Webhooks) EventTypes() []string {
	return typesOf(&domain.WebhookCreated{}, &domain.WebhookUpdated{}, &domain.WebhookSecretRotated{}, &domain.WebhookDisabled{},
		&domain.WebhookDeleted{}, &domain.WebhookReplayRequested{}, &domain.WebhookRedeliveryRequested{})
}

// Apply implements Projector.
func (Webhooks) Apply(ctx context.Context, tx pgx.Tx, e eventlog.Event) error {
	if e.Stream.Type != domain.StreamWebhook {
		return nil
	}
	de, err := domain.DecodeEvent(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	t, id, at, v := e.TenantID, e.Stream.ID, e.RecordedAt, e.StreamVersion
	switch ev := de.(type) {
	case *domain.WebhookCreated:
		_, err = tx.Exec(ctx, `INSERT INTO webhooks (tenant_id, webhook_id, platform, url, event_types, description, enabled,
				sealed_secret, start_transaction_id, start_position, start_time, enabled_since, version, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $11, $11)`,
			t, id, ev.Platform, ev.URL, ev.EventTypes, ev.Description, ev.Enabled, ev.SealedSecret,
			int64(e.Position.TransactionID), e.Position.GlobalPosition, at, v)
	case *domain.WebhookUpdated:
		_, err = tx.Exec(ctx, `UPDATE webhooks SET url = $3, event_types = $4, description = $5,
				enabled_since = CASE WHEN $6 AND NOT enabled THEN $7 ELSE enabled_since END,
				disabled_reason = CASE WHEN $6 THEN '' ELSE disabled_reason END,
				enabled = $6, version = $8, updated_at = $7
			WHERE tenant_id = $1 AND webhook_id = $2`, t, id, ev.URL, ev.EventTypes, ev.Description, ev.Enabled, at, v)
	case *domain.WebhookSecretRotated:
		_, err = tx.Exec(ctx, `UPDATE webhooks SET previous_sealed_secret = sealed_secret, previous_valid_until = $3,
				sealed_secret = $4, version = $5, updated_at = $6
			WHERE tenant_id = $1 AND webhook_id = $2`, t, id, ev.PreviousValidUntil, ev.SealedSecret, v, at)
	case *domain.WebhookDisabled:
		_, err = tx.Exec(ctx, `UPDATE webhooks SET enabled = false, disabled_reason = $3, version = $4, updated_at = $5
			WHERE tenant_id = $1 AND webhook_id = $2`, t, id, ev.Reason, v, at)
	case *domain.WebhookDeleted:
		if _, err = tx.Exec(ctx, `DELETE FROM webhook_redeliveries WHERE tenant_id = $1 AND webhook_id = $2`, t, id); err == nil {
			_, err = tx.Exec(ctx, `DELETE FROM webhooks WHERE tenant_id = $1 AND webhook_id = $2`, t, id)
		}
	case *domain.WebhookReplayRequested:
		_, err = tx.Exec(ctx, `UPDATE webhooks SET replay_from = $3, generation = generation + 1, version = $4, updated_at = $5
			WHERE tenant_id = $1 AND webhook_id = $2`, t, id, ev.FromPosition, v, at)
	case *domain.WebhookRedeliveryRequested:
		if _, err = tx.Exec(ctx, `INSERT INTO webhook_redeliveries (tenant_id, request_id, webhook_id, event_tenant_id, event_position, requested_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, t, e.EventID, id, ev.EventTenantID, ev.EventPosition, at); err == nil {
			_, err = tx.Exec(ctx, `UPDATE webhooks SET version = $3, updated_at = $4 WHERE tenant_id = $1 AND webhook_id = $2`, t, id, v, at)
		}
	}
	return err
}
