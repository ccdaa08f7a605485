// Package projections is AccountDB's projector runtime: it keeps read models
// (tables queried under row-level security) up to date from the event bus,
// records how far each has got, waits for a position on behalf of
// read-your-writes queries, and rebuilds a read model from the event store.
//
// A Projector applies one event at a time. A Runner feeds it from a durable
// JetStream consumer (projector_<name>) on the relay's stream and applies each
// batch in one PostgreSQL transaction together with the projector's
// checkpoint (row projector:<name> in checkpoints), acking only after the
// commit. Each message carries the log position of the event published before
// it; an event is applied only when that position is the checkpoint, events at
// or below the checkpoint are acked as already applied, and anything else is
// handed back to JetStream for later. So events are applied exactly once, in
// log order, whatever JetStream redelivers and whenever the runner crashes.
//
// Rebuild replays the event store into fresh copies of a projector's tables
// and swaps them in, blue/green. See README.md for the details.
package projections
