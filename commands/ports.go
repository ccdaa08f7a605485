package commands

import (
	"context"
	"errors"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
)

// EventStore is the event log as commands uses it: append, find the first
// result of a repeated command, replay a stream (from its latest snapshot)
// and save the snapshots a replay took, and walk a tenant's events for
// usage as of an instant. *eventstore.Store is the PostgreSQL log;
// eventstore/memstore keeps one in memory for tests that need no SQL. Both
// pass the conformance suite in eventstore/storetest.
//
// There is no "append inside this transaction" here. A transaction handle
// is PostgreSQL's, and the only reason commands needs one is to commit rows
// outside the log with the events; that belongs with those rows, in Tables,
// whose PostgreSQL implementation (commands/pgstore) is the one caller of
// eventstore.Store.AppendTx. So every command that writes only events runs
// on either store, and the ones that also write side tables say so by
// needing Tables.
type EventStore interface {
	Append(ctx context.Context, a eventstore.Append) (eventstore.AppendResult, error)
	RecordedCommand(ctx context.Context, id uuid.UUID, requestHash []byte) (eventstore.AppendResult, bool, error)
	FoldStream(ctx context.Context, sc tenantdb.Scope, stream eventlog.StreamID, after int64, until time.Time,
		fn func(eventlog.Event) error) error
	FoldFromSnapshot(ctx context.Context, sc tenantdb.Scope, stream eventlog.StreamID, codeVersion int, until time.Time,
		restore func(eventstore.Snapshot) error, fn func(eventlog.Event) error) (after int64, restoreErr, err error)
	SaveSnapshots(ctx context.Context, tenant uuid.UUID, stream eventlog.StreamID, codeVersion int, snaps []eventstore.Snapshot) error
	AuditEach(ctx context.Context, sc tenantdb.Scope, f eventstore.AuditFilter, fn func(eventlog.Event) error) error
	Upcast(e *eventlog.Event) error
}

var _ EventStore = (*eventstore.Store)(nil)

// Tables are the rows commands keeps beside the log (sessions, refresh
// tokens, credentials, usage, cluster inventory) and the read model it
// consults, with the one transaction that commits side rows together with
// events. Its implementation must append to the same log as the handler's
// EventStore.
type Tables interface {
	// AppendWith appends a and then, unless the append was a replay (it
	// wrote nothing, and neither may write), calls write with the side
	// tables of the same transaction: events and rows commit together, or
	// neither does, and write's error is AppendWith's. With lockTenant the
	// transaction first waits for every other lockTenant transaction of
	// a.TenantID, for the rules that read across a tenant's streams (the
	// last admin, the quota).
	AppendWith(ctx context.Context, a eventstore.Append, lockTenant bool,
		write func(context.Context, TxTables) error) (eventstore.AppendResult, error)
	// AppendLinked is AppendWith that also appends linked, each to its own
	// stream and tenant, after write, in the same transaction: all commit
	// or none does (an allocation with the request that takes it). A
	// version conflict on any of them is an *eventstore.ConflictError.
	AppendLinked(ctx context.Context, a eventstore.Append, linked []eventstore.Append, lockTenant bool,
		write func(context.Context, TxTables) error) (eventstore.AppendResult, error)
	// AppendGroup commits the appends of many commands in one transaction
	// (group commit, see create_group.go). It first takes the lock that
	// lockTenant takes, of every tenant in tenants, and reads each one's
	// usage and tenant version, now stable; decide decides on them. The
	// appends decide returns are then written, in order, each to its own
	// stream and tenant, with the group's usage changes after them (one
	// that no longer fits its quota fails the group, ErrQuotaExceeded),
	// then its Write, if any. All commit or none does; the results are the
	// appends'. When one of them turns out to be a replay (its command was
	// recorded already), nothing is written and the results end with it,
	// Replayed. (pgstore: three round trips, the begin with the locks and
	// reads, the writes, the commit; a create's POST waits for them.)
	AppendGroup(ctx context.Context, tenants []uuid.UUID,
		decide func(context.Context, map[uuid.UUID]TenantState) (Group, error)) ([]eventstore.AppendResult, error)
	// AppendGroupExpecting is AppendGroup decided on the state the caller
	// expects its tenants in (the keys of expected), as its own last group
	// left them, instead of on the state read under their locks: the locks
	// are taken all the same, and the group commits only if each tenant is
	// in exactly the state expected and each append is written. Otherwise
	// nothing is written and the error wraps ErrGroupNotAsExpected: decide
	// again with AppendGroup. A group with a Write needs AppendGroup.
	// (pgstore: one round trip, the commit included.)
	AppendGroupExpecting(ctx context.Context, expected map[uuid.UUID]TenantState,
		decide func(context.Context, map[uuid.UUID]TenantState) (Group, error)) ([]eventstore.AppendResult, error)
	Sessions() SessionStore
	Credentials() CredentialStore
	Inventory() InventoryStore
	VMs() VMIndex
	Unseen() UnseenGuests
	APITokens() APITokenStore
	MFA() MFAStore
	Identities() IdentityStore
}

// ErrGroupNotAsExpected is AppendGroupExpecting's refusal: a tenant was
// not in the state expected, or an append was refused; nothing was written.
var ErrGroupNotAsExpected = errors.New("commands: the group's tenants are not in the state it was decided on")

// TenantState is what a group of creates decides a tenant's quota on:
// its usage and the version of its stream, read together under its lock.
type TenantState struct {
	Usage   Usage
	Version int64
}

// Group is what AppendGroup commits: appends, the usage they add, then
// side writes.
type Group struct {
	Appends []eventstore.Append
	Usage   []UsageChange
	Write   func(context.Context, TxTables) error
}

// UsageChange adds Delta to Tenant's usage, within Quota (UsageWriter.Add).
type UsageChange struct {
	Tenant uuid.UUID
	Delta  Usage
	Quota  domain.Quota
}

// TxTables are the side tables inside AppendWith's transaction.
type TxTables interface {
	Sessions() SessionWriter
	Credentials() CredentialWriter
	Usage() UsageWriter
	APITokens() APITokenWriter
	MFA() MFAWriter
	Identities() IdentityWriter
	Privacy() PrivacyWriter
}
