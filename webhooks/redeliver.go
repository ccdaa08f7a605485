package webhooks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// redeliver makes the redeliveries asked for: each sends its event once
// more, outside the endpoint's stream order, and is done once recorded.
func (d *Dispatcher) redeliver(ctx context.Context) error {
	rs, err := d.store.PendingRedeliveries(ctx, 100)
	if err != nil || len(rs) == 0 {
		return err
	}
	eps, err := d.store.Endpoints(ctx)
	if err != nil {
		return err
	}
	byID := map[uuid.UUID]Endpoint{}
	for _, e := range eps {
		byID[e.ID] = e
	}
	for _, r := range rs {
		e, ok := byID[r.Webhook]
		if !ok || e.Tenant != r.Tenant || (!e.Platform && r.EventTenant != e.Tenant) {
			continue
		}
		live, err := d.open(e)
		if err != nil {
			return err
		}
		ev, found, err := d.events.EventAt(ctx, r.EventTenant, r.EventPosition)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("redelivery %s: %w", r.Request, errNoEvent)
		}
		enc, err := encode(ev)
		if err != nil {
			return err
		}
		o := d.send(ctx, live, enc)
		if ctx.Err() != nil {
			return nil
		}
		if err := d.store.Record(ctx, []Delivery{record(live, ev, 1, o, r.Request, d.now())}); err != nil {
			return err
		}
	}
	return nil
}

// sweep deletes what endpoints no longer need: the cursors of deleted
// endpoints, and the durable consumers (one per endpoint, named
// webhook_<id>_<generation>) that deliveries went through before cursors
// were kept in PostgreSQL.
func (d *Dispatcher) sweep(ctx context.Context, eps []Endpoint) {
	ids := make([]uuid.UUID, len(eps))
	for i, e := range eps {
		ids[i] = e.ID
	}
	if err := d.store.DropCursors(ctx, ids); err != nil {
		d.log.Warn("webhooks: dropping cursors", "err", err)
	}
	s, err := d.js.Stream(ctx, bus.StreamName)
	if err != nil {
		d.log.Warn("webhooks: listing consumers", "err", err)
		return
	}
	names := s.ConsumerNames(ctx)
	var stale []string
	for n := range names.Name() {
		if strings.HasPrefix(n, legacyConsumerPrefix) {
			stale = append(stale, n)
		}
	}
	for _, n := range stale {
		if err := s.DeleteConsumer(ctx, n); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			d.log.Warn("webhooks: deleting a consumer", "consumer", n, "err", err)
		}
	}
}

// StoreEvents reads events from the PostgreSQL event store.
type StoreEvents struct{ Store *eventstore.Store }

// EventAt implements EventReader.
func (s StoreEvents) EventAt(ctx context.Context, tenant uuid.UUID, position int64) (eventlog.Event, bool, error) {
	evs, err := s.Store.AuditPage(ctx, tenantdb.Tenant(tenant), eventstore.AuditFilter{TenantID: tenant, After: position - 1}, 1)
	if err != nil || len(evs) == 0 || evs[0].Position.GlobalPosition != position {
		return eventlog.Event{}, false, err
	}
	return evs[0], true, nil
}
