package projections

import (
	"context"
	"fmt"
	"regexp"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/jackc/pgx/v5"
)

// Projector turns events into a read model. The runtime calls Apply once per
// event, in log order, inside a transaction already scoped to the event's
// tenant; Apply must write only through tx and only to the tables it owns.
//
// Name is a stable identifier: it names the durable JetStream consumer
// (projector_<name>) and the checkpoint row (projector:<name>). Renaming a
// projector re-consumes the whole log. Tables lists the read-model tables the
// projector owns, unqualified: rebuild recreates exactly these, and Apply must
// refer to them unqualified too, so that rebuild can redirect its writes to the
// fresh copies with search_path.
//
// EventTypes declares the event types Apply reacts to; it must ignore every
// other event. nil declares every event, known or not (TenantActivity). The
// runner still receives every event (the checkpoint chain needs them all)
// but, like a rebuild, calls Apply only for the declared types: a batch of
// others costs no statement. The conformance suite holds the projector and
// its test corpus to the declaration: every declared type must occur in the
// corpus, and replaying only the declared types must build the same read
// model.
type Projector interface {
	Name() string
	Tables() []string
	EventTypes() []string
	Apply(ctx context.Context, tx pgx.Tx, e eventlog.Event) error
}

// Names are lower-case identifiers: they become a NATS durable name, part of a
// checkpoint key and part of a schema name.
var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// tablePattern is what rebuild accepts as a table name: plain identifiers only,
// so they can be spliced into DDL without quoting surprises.
var tablePattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func validate(p Projector) error {
	if !namePattern.MatchString(p.Name()) {
		return fmt.Errorf("%w: name %q must match %s", ErrInvalidProjector, p.Name(), namePattern)
	}
	for _, t := range p.Tables() {
		if !tablePattern.MatchString(t) {
			return fmt.Errorf("%w: %s: table %q must match %s", ErrInvalidProjector, p.Name(), t, tablePattern)
		}
	}
	return nil
}

// typesOf names the types of evs, for EventTypes declarations that cannot
// drift from the domain's spelling.
func typesOf(evs ...domain.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.EventType()
	}
	return out
}

// CheckpointName is the checkpoints row a projector keeps its position in.
func CheckpointName(projector string) string { return "projector:" + projector }

// ConsumerName is the durable JetStream consumer a projector reads from.
func ConsumerName(projector string) string { return "projector_" + projector }
