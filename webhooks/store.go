package webhooks

import (
	"context"
	"errors"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Endpoint is a webhook endpoint as the dispatcher reads it from the
// webhooks read model (projections.Webhooks), with its secrets sealed.
type Endpoint struct {
	Tenant, ID     uuid.UUID
	Platform       bool
	URL            string
	EventTypes     []string
	Enabled        bool
	SealedSecret   string
	PreviousSealed string
	PreviousUntil  time.Time
	// Start is where delivery begins (webhook_created's position), or,
	// after a replay (Generation > 0), ReplayFrom (a global position).
	Start        eventlog.Position
	StartTime    time.Time
	ReplayFrom   int64
	Generation   int
	EnabledSince time.Time
	Version      int64
}

// Store is the dispatcher's PostgreSQL: the webhooks read model (read
// across tenants) and webhook_deliveries (written in each tenant's scope).
type Store struct{ pool *pgxpool.Pool }

// NewStore is the store on the service role's pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Endpoints is every endpoint of every tenant.
func (s *Store) Endpoints(ctx context.Context) ([]Endpoint, error) {
	var out []Endpoint
	err := tenantdb.ReadTx(ctx, s.pool, tenantdb.System(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT tenant_id, webhook_id, platform, url, event_types, enabled, sealed_secret,
				previous_sealed_secret, coalesce(previous_valid_until, 'epoch'), start_transaction_id, start_position, start_time,
				replay_from, generation, enabled_since, version
			FROM webhooks ORDER BY tenant_id, webhook_id`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Endpoint, error) {
			var e Endpoint
			var tx int64
			err := row.Scan(&e.Tenant, &e.ID, &e.Platform, &e.URL, &e.EventTypes, &e.Enabled, &e.SealedSecret, &e.PreviousSealed,
				&e.PreviousUntil, &tx, &e.Start.GlobalPosition, &e.StartTime, &e.ReplayFrom, &e.Generation, &e.EnabledSince, &e.Version)
			e.Start.TransactionID = uint64(tx)
			return e, err
		})
		return err
	})
	return out, err
}

// Delivery is one attempt to deliver one event to one endpoint.
type Delivery struct {
	ID, Tenant, Webhook uuid.UUID
	MessageID           string
	EventTenant         uuid.UUID
	EventPosition       int64
	EventType           string
	Attempt             int
	Succeeded           bool
	ResponseCode        int // 0: no answer
	Latency             time.Duration
	ResponseExcerpt     string
	Error               string
	// RequestID is the redelivery request it answers (uuid.Nil: none).
	RequestID uuid.UUID
	At        time.Time
}

// Status is "succeeded" or "failed".
func (d Delivery) Status() string {
	if d.Succeeded {
		return "succeeded"
	}
	return "failed"
}

// Record writes deliveries, each in its tenant's scope, one statement per
// run of one tenant's deliveries (COPY is not allowed on a table with
// row-level security), all in one round trip: one implicit transaction
// (tenantdb.QueueScope), so it holds a transaction id only while the
// server writes, and never holds back the relay for a client's turn. A
// redelivery recorded already (by another replica) is skipped.
func (s *Store) Record(ctx context.Context, ds []Delivery) error {
	b := &pgx.Batch{}
	for start := 0; start < len(ds); {
		end := start + 1
		for end < len(ds) && ds[end].Tenant == ds[start].Tenant {
			end++
		}
		if err := tenantdb.QueueScope(b, tenantdb.Tenant(ds[start].Tenant)); err != nil {
			return err
		}
		queueDeliveries(b, ds[start:end])
		start = end
	}
	return s.pool.SendBatch(ctx, b).Close()
}

func queueDeliveries(b *pgx.Batch, ds []Delivery) {
	n := len(ds)
	var (
		ids, hooks, evTenants   = make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n)
		msgIDs, types, statuses = make([]string, n), make([]string, n), make([]string, n)
		excerpts, errs          = make([]string, n), make([]string, n)
		positions, latencies    = make([]int64, n), make([]int64, n)
		attempts                = make([]int32, n)
		codes                   = make([]*int32, n)
		requests                = make([]*uuid.UUID, n)
		ats                     = make([]time.Time, n)
	)
	for i, d := range ds {
		ids[i], hooks[i], evTenants[i] = d.ID, d.Webhook, d.EventTenant
		msgIDs[i], types[i], statuses[i] = d.MessageID, d.EventType, d.Status()
		excerpts[i], errs[i] = d.ResponseExcerpt, d.Error
		positions[i], latencies[i], attempts[i], ats[i] = d.EventPosition, d.Latency.Milliseconds(), int32(d.Attempt), d.At
		if d.ResponseCode != 0 {
			c := int32(d.ResponseCode)
			codes[i] = &c
		}
		if d.RequestID != uuid.Nil {
			requests[i] = &d.RequestID
		}
	}
	b.Queue(`INSERT INTO webhook_deliveries (tenant_id, delivery_id, webhook_id, message_id, event_tenant_id,
			event_position, event_type, attempt, status, response_code, latency_ms, response_excerpt, error, request_id, at)
		SELECT $1, * FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::uuid[], $6::bigint[], $7::text[], $8::int[], $9::text[],
			$10::int[], $11::bigint[], $12::text[], $13::text[], $14::uuid[], $15::timestamptz[])
		ON CONFLICT DO NOTHING`,
		ds[0].Tenant, ids, hooks, msgIDs, evTenants, positions, types, attempts, statuses, codes, latencies, excerpts, errs, requests, ats)
}

// Failures are the failed attempts to deliver the event at position to
// the endpoint since since (the redeliveries asked for aside): how many,
// and when the first was made.
func (s *Store) Failures(ctx context.Context, tenant, webhook uuid.UUID, position int64, since time.Time) (first time.Time, n int, err error) {
	var at *time.Time
	err = tenantdb.ReadTx(ctx, s.pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT min(at), count(*) FROM webhook_deliveries
			WHERE tenant_id = $1 AND webhook_id = $2 AND event_position = $3 AND at >= $4 AND status = 'failed' AND request_id IS NULL`,
			tenant, webhook, position, since).Scan(&at, &n)
	})
	if err != nil || at == nil {
		return time.Time{}, 0, err
	}
	return *at, n, nil
}

// Redelivery is a redelivery asked for and not yet made.
type Redelivery struct {
	Tenant, Request, Webhook uuid.UUID
	EventTenant              uuid.UUID
	EventPosition            int64
}

// PendingRedeliveries lists up to limit redeliveries no delivery answers.
func (s *Store) PendingRedeliveries(ctx context.Context, limit int) ([]Redelivery, error) {
	var out []Redelivery
	err := tenantdb.ReadTx(ctx, s.pool, tenantdb.System(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT r.tenant_id, r.request_id, r.webhook_id, r.event_tenant_id, r.event_position
			FROM webhook_redeliveries r
			WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.tenant_id = r.tenant_id AND d.request_id = r.request_id)
			ORDER BY r.requested_at LIMIT $1`, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Redelivery, error) {
			var r Redelivery
			return r, row.Scan(&r.Tenant, &r.Request, &r.Webhook, &r.EventTenant, &r.EventPosition)
		})
		return err
	})
	return out, err
}

// ListDeliveries is a page of tenant's endpoint's deliveries, newest
// first, before the delivery id before (uuid.Nil: from the newest).
func (s *Store) ListDeliveries(ctx context.Context, tenant, webhook, before uuid.UUID, limit int) ([]Delivery, error) {
	if before == uuid.Nil {
		before = uuid.Max
	}
	var out []Delivery
	err := tenantdb.ReadTx(ctx, s.pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT delivery_id, message_id, event_tenant_id, event_position, event_type, attempt, status,
				coalesce(response_code, 0), latency_ms, response_excerpt, error, coalesce(request_id, '00000000-0000-0000-0000-000000000000'), at
			FROM webhook_deliveries WHERE tenant_id = $1 AND webhook_id = $2 AND delivery_id < $3
			ORDER BY delivery_id DESC LIMIT $4`, tenant, webhook, before, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Delivery, error) {
			d := Delivery{Tenant: tenant, Webhook: webhook}
			var status string
			var ms int64
			err := row.Scan(&d.ID, &d.MessageID, &d.EventTenant, &d.EventPosition, &d.EventType, &d.Attempt, &status,
				&d.ResponseCode, &ms, &d.ResponseExcerpt, &d.Error, &d.RequestID, &d.At)
			d.Succeeded, d.Latency = status == "succeeded", time.Duration(ms)*time.Millisecond
			return d, err
		})
		return err
	})
	return out, err
}

// GetDelivery is tenant's endpoint's delivery id; false when there is none.
func (s *Store) GetDelivery(ctx context.Context, tenant, webhook, id uuid.UUID) (Delivery, bool, error) {
	ds, err := s.ListDeliveries(ctx, tenant, webhook, uuidAfter(id), 1)
	if err != nil || len(ds) == 0 || ds[0].ID != id {
		return Delivery{}, false, err
	}
	return ds[0], true, nil
}

// uuidAfter is the next uuid above id, so "delivery_id < uuidAfter(id)"
// starts at id.
func uuidAfter(id uuid.UUID) uuid.UUID {
	for i := len(id) - 1; i >= 0; i-- {
		id[i]++
		if id[i] != 0 {
			break
		}
	}
	return id
}

var errNoEvent = errors.New("webhooks: the event is not in the log")

// DeliveryRetention is how long delivery records are kept.
const DeliveryRetention = 30 * 24 * time.Hour

// Prune deletes tenant's delivery records older than before, at most
// limit of them; it answers how many went.
func (s *Store) Prune(ctx context.Context, tenant uuid.UUID, before time.Time, limit int) (int64, error) {
	var n int64
	err := tenantdb.InTx(ctx, s.pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM webhook_deliveries WHERE tenant_id = $1 AND delivery_id IN (
			SELECT delivery_id FROM webhook_deliveries WHERE tenant_id = $1 AND at < $2 LIMIT $3)`, tenant, before, limit)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// DeliveryTenants lists the tenants with delivery records.
func (s *Store) DeliveryTenants(ctx context.Context) ([]uuid.UUID, error) {
	var out []uuid.UUID
	err := tenantdb.ReadTx(ctx, s.pool, tenantdb.System(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT DISTINCT tenant_id FROM webhook_deliveries`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		return err
	})
	return out, err
}
