package app

import "github.com/accountdb/accountdb/eventstore"

// Upcasters is the registry of event schema migrations: how to read an old
// version of an event type as its current version. When an event's data
// changes shape, bump the version its writer records and register the step
// from the old version here; every reader (commands loading aggregates,
// history, replay, projectors live and rebuilt) then sees the new shape,
// while the log and the bus keep the event as it was recorded (and hashed).
// Nothing has changed shape yet, so the registry is empty.
func Upcasters() *eventstore.Upcasters {
	return eventstore.NewUpcasters()
}

// NewStore is the event store every entry point uses: it reads events at
// their current schema version.
func NewStore(s *eventstore.Store) *eventstore.Store {
	return s.WithUpcasters(Upcasters())
}
