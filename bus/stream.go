// Package bus is the contract of the ACCOUNTDB_EVENTS stream: its subjects,
// the headers on every message, how an event is encoded into a message and
// decoded from one, and the stream's creation. The relay publishes by it and
// every subscriber (projectors, the API's event feeds, the agent) reads by it.
// It imports no database code, so a subscriber such as the agent carries no
// PostgreSQL driver.
package bus

import (
	"context"
	"strings"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/internal/jetstreams"
	"github.com/nats-io/nats.go/jetstream"
)

// The bus side of the log: one JetStream stream holds every event the relay
// publishes, one message per event, in log order.
const (
	StreamName    = "ACCOUNTDB_EVENTS"
	SubjectPrefix = "accountdb.events."
	// StreamSubjects is the stream's subject filter.
	StreamSubjects = SubjectPrefix + ">"
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id, which is
	// what makes a relay retry of an already stored event a no-op.
	DuplicateWindow = 2 * time.Minute
)

// Subject is where e is published:
// accountdb.events.<tenant_id>.<stream_type>.<event_type>. Stream and event
// types are lower-case identifiers and tenant ids are UUIDs, so every token is
// a valid, wildcard-free subject token.
func Subject(e eventlog.Event) string {
	return SubjectPrefix + e.TenantID.String() + "." + e.Stream.Type + "." + e.Type
}

// SubjectEventType is the event type a Subject names (its last token), so
// that a consumer can pass over events it does not read without decoding
// them; "" when subject is not of that form.
func SubjectEventType(subject string) string {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix)
	if !ok || strings.Count(rest, ".") != 2 {
		return ""
	}
	return rest[strings.LastIndexByte(rest, '.')+1:]
}

// EnsureStream creates the ACCOUNTDB_EVENTS stream, or updates its
// configuration to the one the relay relies on: file storage, kept until
// removed by an operator, duplicates remembered for DuplicateWindow. An
// existing stream keeps its replica count.
func EnsureStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	return EnsureStreamReplicas(ctx, js, 0)
}

// EnsureStreamReplicas is EnsureStream that also moves the stream to
// replicas copies (ACCOUNTDB_NATS_REPLICAS; zero keeps what it has).
func EnsureStreamReplicas(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	s, err := jetstreams.Ensure(ctx, js, jetstream.StreamConfig{
		Replicas:    replicas,
		Name:        StreamName,
		Description: "AccountDB events, relayed in log order from the PostgreSQL event store",
		Subjects:    []string{StreamSubjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Duplicates:  DuplicateWindow,
		AllowDirect: true,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}
