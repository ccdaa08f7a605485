package feed

import (
	"context"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// Bus is the part of JetStream the feed reads the events stream through:
// ordered consumers for the hubs and catch-ups, direct gets to find where a
// resume starts, and deleting the consumers it stops. A
// jetstream.JetStream is one.
type Bus interface {
	Stream(ctx context.Context, name string) (jetstream.Stream, error)
	OrderedConsumer(ctx context.Context, stream string, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, error)
	DeleteConsumer(ctx context.Context, stream, consumer string) error
}

// Positions finds the log position of one of a tenant's events by its
// global position (the id a client sends back as Last-Event-ID). found is
// false when the tenant has no such event: another tenant's event must read
// exactly like one that does not exist.
type Positions interface {
	EventPosition(ctx context.Context, tenant uuid.UUID, globalPosition int64) (pos eventlog.Position, found bool, err error)
}

// Sessions reads a session's current roles, and whether it is still open, at
// each heartbeat. A *commands.Handler is one.
type Sessions interface {
	SessionRoles(ctx context.Context, tenant, user, session uuid.UUID) (roles []string, active bool, err error)
}
