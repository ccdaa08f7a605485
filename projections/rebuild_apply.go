package projections

import (
	"context"
	"fmt"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// BatchApplier is a Projector that can also apply many events of one tenant
// in one go, for rebuilds and live batches alike: one statement per batch
// instead of one per event (issue 16 asks a rebuild to replay 100,000
// events/s; a live batch's transaction is short, see applyEvents). ApplyBatch gets a
// tenant's events in log order, in a transaction scoped to that tenant, and
// must leave its tables as Apply called on each of them in turn would.
//
// A rebuild (and the runner, for a batch of deliveries) hands each tenant's
// events of a batch to ApplyBatch at once, tenant after tenant: it reorders events of different tenants, never those
// of one. That is the same model only for a projector whose rows are each
// one tenant's and whose Apply reads and writes under the event's tenant
// scope (row-level security then keeps tenants from seeing each other's
// rows, so their events commute). Implement BatchApplier only for such.
//
// Embedding promotes ApplyBatch: a type that embeds a BatchApplier and
// overrides Apply must override ApplyBatch too, or a rebuild bypasses its
// Apply.
type BatchApplier interface {
	Projector
	ApplyBatch(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, evs []eventlog.Event) error
}

// reactsTo reports whether p declared an event type; nil declares all. The
// conformance suite holds every projector to building the same model from
// its declared types alone, so a rebuild skips the others without a call.
func reactsTo(p Projector) func(string) bool {
	types := p.EventTypes()
	if types == nil {
		return func(string) bool { return true }
	}
	set := make(map[string]bool, len(types))
	for _, t := range types {
		set[t] = true
	}
	return func(t string) bool { return set[t] }
}

// applyReplayed applies a batch of the log (in log order) to the tables that
// tx's search path finds first: each event p reacts to, under its tenant's
// scope, per tenant in one ApplyBatch call if p is a BatchApplier.
func applyReplayed(ctx context.Context, tx pgx.Tx, p Projector, reacts func(string) bool, evs []eventlog.Event) error {
	ba, batched := p.(BatchApplier)
	if !batched {
		scoped := uuid.Nil
		for _, e := range evs {
			if !reacts(e.Type) {
				continue
			}
			if err := applyEvent(ctx, tx, p, e, &scoped); err != nil {
				return err
			}
		}
		return nil
	}
	var order []uuid.UUID
	byTenant := map[uuid.UUID][]eventlog.Event{}
	for _, e := range evs {
		if !reacts(e.Type) {
			continue
		}
		if _, seen := byTenant[e.TenantID]; !seen {
			order = append(order, e.TenantID)
		}
		byTenant[e.TenantID] = append(byTenant[e.TenantID], e)
	}
	for _, tenant := range order {
		tevs := byTenant[tenant]
		if err := tenantdb.SetScope(ctx, tx, tenantdb.Tenant(tenant)); err != nil {
			return fmt.Errorf("event %d: %w", tevs[0].Position.GlobalPosition, err)
		}
		if err := ba.ApplyBatch(ctx, tx, tenant, tevs); err != nil {
			return fmt.Errorf("%s: events %d–%d of tenant %s: %w", p.Name(),
				tevs[0].Position.GlobalPosition, tevs[len(tevs)-1].Position.GlobalPosition, tenant, err)
		}
	}
	return nil
}
