package projections

import (
	"context"
	"errors"
	"time"

	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// WebhookView is an endpoint as the API shows it (never its secrets).
type WebhookView struct {
	ID             uuid.UUID
	Platform       bool
	URL            string
	EventTypes     []string
	Description    string
	Enabled        bool
	DisabledReason string
	Version        int64
	CreatedAt      time.Time
}

const webhookViewColumns = `webhook_id, platform, url, event_types, description, enabled, disabled_reason, version, created_at`

func scanWebhookView(row pgx.Row) (WebhookView, error) {
	var v WebhookView
	err := row.Scan(&v.ID, &v.Platform, &v.URL, &v.EventTypes, &v.Description, &v.Enabled, &v.DisabledReason, &v.Version, &v.CreatedAt)
	return v, err
}

// ListWebhooks lists tenant's endpoints, oldest first; platform selects the
// platform-wide ones (which live in the platform tenant) or the others.
func ListWebhooks(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID, platform bool, page Page) ([]WebhookView, *PageKey, error) {
	var out []WebhookView
	err := tenantdb.ReadTx(ctx, pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		after, id, limit := page.args()
		rows, err := tx.Query(ctx, `SELECT `+webhookViewColumns+` FROM webhooks
			WHERE tenant_id = $1 AND platform = $2 AND (created_at, webhook_id) > ($3, $4)
			ORDER BY created_at, webhook_id LIMIT $5`, tenant, platform, after, id, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (WebhookView, error) { return scanWebhookView(row) })
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	rows, next := nextKey(out, page.Limit, func(v WebhookView) PageKey { return PageKey{CreatedAt: v.CreatedAt, ID: v.ID} })
	return rows, next, nil
}

// GetWebhook is tenant's endpoint id; false when there is none.
func GetWebhook(ctx context.Context, pool *pgxpool.Pool, tenant, id uuid.UUID) (WebhookView, bool, error) {
	var v WebhookView
	err := tenantdb.ReadTx(ctx, pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		var err error
		v, err = scanWebhookView(tx.QueryRow(ctx, `SELECT `+webhookViewColumns+` FROM webhooks WHERE tenant_id = $1 AND webhook_id = $2`, tenant, id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return WebhookView{}, false, nil
	}
	return v, err == nil, err
}

// CountWebhooks is how many endpoints tenant has (the platform tenant's
// include the platform-wide ones).
func CountWebhooks(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID) (int, error) {
	var n int
	err := tenantdb.ReadTx(ctx, pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM webhooks WHERE tenant_id = $1`, tenant).Scan(&n)
	})
	return n, err
}
