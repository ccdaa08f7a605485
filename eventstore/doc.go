// Package eventstore is AccountDB's event log in PostgreSQL: appends with
// optimistic concurrency and idempotent commands, reads of one stream or of the
// whole log in commit order, snapshots, upcasting, the audit hash chain and its
// anchors. Its record types (eventlog.Event, eventlog.Position) live in
// eventlog; the relay package publishes the log to JetStream and the bus
// package is the contract of the messages it publishes, so that subscribers
// never import this package or its PostgreSQL driver.
package eventstore
