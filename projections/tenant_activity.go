package projections

import (
	"context"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/jackc/pgx/v5"
)

// TenantActivity counts each tenant's events per stream type and event type
// and remembers the last one (table tenant_activity). It is the reference read
// model of the runtime: every event touches it.
type TenantActivity struct{}

var _ Projector = TenantActivity{}

// Name implements Projector.
func (TenantActivity) Name() string { return "tenant_activity" }

// Tables implements Projector.
func (TenantActivity) Tables() []string { return []string{"tenant_activity"} }

// EventTypes implements Projector: nil, every event counts.
func (TenantActivity) EventTypes() []string { return nil }

// Events arrive in log order, so the last one applied is the newest: its
// position and time simply replace the stored ones.
const tenantActivityUpsert = `INSERT INTO tenant_activity
	(tenant_id, stream_type, event_type, event_count, last_position, last_recorded_at)
VALUES ($1, $2, $3, 1, $4, $5)
ON CONFLICT (tenant_id, stream_type, event_type) DO UPDATE SET
	event_count      = tenant_activity.event_count + 1,
	last_position    = EXCLUDED.last_position,
	last_recorded_at = EXCLUDED.last_recorded_at`

// Apply implements Projector.
func (TenantActivity) Apply(ctx context.Context, tx pgx.Tx, e eventlog.Event) error {
	_, err := tx.Exec(ctx, tenantActivityUpsert,
		e.TenantID, e.Stream.Type, e.Type, e.Position.GlobalPosition, e.RecordedAt)
	return err
}
