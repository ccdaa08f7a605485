package projections

import (
	"context"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// TenantActivity counts each tenant's events per stream type and event type
// and remembers the last one (table tenant_activity). It is the reference read
// model of the runtime: every event touches it.
type TenantActivity struct{}

var _ BatchApplier = TenantActivity{}

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

// tenantActivityBatchUpsert is tenantActivityUpsert for many rows of one
// tenant, each with the count of its events in the batch.
const tenantActivityBatchUpsert = `INSERT INTO tenant_activity
	(tenant_id, stream_type, event_type, event_count, last_position, last_recorded_at)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::timestamptz[])
ON CONFLICT (tenant_id, stream_type, event_type) DO UPDATE SET
	event_count      = tenant_activity.event_count + EXCLUDED.event_count,
	last_position    = EXCLUDED.last_position,
	last_recorded_at = EXCLUDED.last_recorded_at`

// ApplyBatch implements BatchApplier: it counts the events per (stream type,
// event type), keeps the last of each as Apply would, and upserts each such
// row once. Its rows are per tenant and written under the tenant's scope.
func (TenantActivity) ApplyBatch(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, evs []eventlog.Event) error {
	type key struct{ stream, event string }
	idx := map[key]int{}
	var (
		streamTypes, eventTypes []string
		counts, positions       []int64
		recorded                []time.Time
	)
	for _, e := range evs {
		k := key{e.Stream.Type, e.Type}
		i, ok := idx[k]
		if !ok {
			i = len(streamTypes)
			idx[k] = i
			streamTypes, eventTypes = append(streamTypes, k.stream), append(eventTypes, k.event)
			counts, positions, recorded = append(counts, 0), append(positions, 0), append(recorded, time.Time{})
		}
		counts[i]++
		positions[i], recorded[i] = e.Position.GlobalPosition, e.RecordedAt
	}
	if len(counts) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, tenantActivityBatchUpsert, tenant, streamTypes, eventTypes, counts, positions, recorded)
	return err
}
