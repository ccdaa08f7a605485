// Package storetest is the conformance suite of event store
// implementations: what eventstore.Store (PostgreSQL) and
// eventstore/memstore (memory) both promise, so that code tested against
// one may run on the other. It covers appends and their expected versions,
// idempotent command ids and request hashes, bad input, stream reads, log
// order, tenant isolation, folds and snapshots. What only PostgreSQL has
// (the commit watermark under concurrent transactions, row-level security
// against raw SQL, insert-only triggers, the hash chain, AppendTx) is
// tested in eventstore itself.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
)

// Store is what the suite exercises.
type Store interface {
	Append(ctx context.Context, a eventstore.Append) (eventstore.AppendResult, error)
	RecordedCommand(ctx context.Context, id uuid.UUID, requestHash []byte) (eventstore.AppendResult, bool, error)
	StreamVersion(ctx context.Context, tenant uuid.UUID, stream eventlog.StreamID) (int64, error)
	ReadStream(ctx context.Context, tenant uuid.UUID, stream eventlog.StreamID, fromVersion int64, limit int) ([]eventlog.Event, error)
	ReadAll(ctx context.Context, after eventlog.Position, limit int) ([]eventlog.Event, error)
	FoldStream(ctx context.Context, sc tenantdb.Scope, stream eventlog.StreamID, after int64, until time.Time,
		fn func(eventlog.Event) error) error
	FoldFromSnapshot(ctx context.Context, sc tenantdb.Scope, stream eventlog.StreamID, codeVersion int, until time.Time,
		restore func(eventstore.Snapshot) error, fn func(eventlog.Event) error) (after int64, restoreErr, err error)
	SaveSnapshots(ctx context.Context, tenant uuid.UUID, stream eventlog.StreamID, codeVersion int, snaps []eventstore.Snapshot) error
	LatestSnapshot(ctx context.Context, sc tenantdb.Scope, stream eventlog.StreamID, codeVersion int, until time.Time) (eventstore.Snapshot, bool, error)
	SnapshotStateVersion(codeVersion int) string
	AuditEach(ctx context.Context, sc tenantdb.Scope, f eventstore.AuditFilter, fn func(eventlog.Event) error) error
}

// Harness gives the suite stores of one implementation.
type Harness struct {
	// New returns an empty store.
	New func(t *testing.T) Store
	// WithUpcasters is s's log read through u.
	WithUpcasters func(s Store, u *eventstore.Upcasters) Store
	// AppendLate appends events to st (of tenant, expecting any version)
	// recorded before whatever during appends, which runs first: they get
	// the versions after during's but an earlier recorded_at, as in
	// PostgreSQL a transaction that began first and committed last.
	AppendLate func(t *testing.T, s Store, tenant uuid.UUID, st eventlog.StreamID, events []eventstore.NewEvent, during func())
}

// Run runs the whole suite, each test on a new store.
func Run(t *testing.T, h Harness) {
	for _, c := range []struct {
		name string
		test func(*testing.T, Harness)
	}{
		{"AppendAndReadStream", AppendAndReadStream},
		{"ExpectedVersionConflicts", ExpectedVersionConflicts},
		{"BadInputIsRejected", func(t *testing.T, h Harness) { BadInputIsRejected(t, h.New(t)) }},
		{"DuplicateEventIDIsAnError", DuplicateEventIDIsAnError},
		{"CommandIdempotency", CommandIdempotency},
		{"IdempotencyKeyWithDifferentRequestIsRejected", IdempotencyKeyWithDifferentRequestIsRejected},
		{"RecordedCommand", RecordedCommand},
		{"ReadAllInLogOrder", ReadAllInLogOrder},
		{"AuditEachFilters", AuditEachFilters},
		{"LatestSnapshotHonoursCoveredUntil", LatestSnapshotHonoursCoveredUntil},
		{"SnapshotsOfAnotherStateVersionAreIgnored", SnapshotsOfAnotherStateVersionAreIgnored},
		{"SnapshotsAreTenantIsolated", SnapshotsAreTenantIsolated},
		{"FoldStreamAfterAVersion", FoldStreamAfterAVersion},
		{"FoldFromSnapshotFallsBackWhenRestoreFails", FoldFromSnapshotFallsBackWhenRestoreFails},
		{"FoldFromSnapshotFoldsWhatFollowsIt", FoldFromSnapshotFoldsWhatFollowsIt},
	} {
		t.Run(c.name, func(t *testing.T) { c.test(t, h) })
	}
}

func stream(t testing.TB) eventlog.StreamID {
	t.Helper()
	s, err := eventlog.NewStreamID("vm", uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func oneEvent(typ string, data any) []eventstore.NewEvent {
	return []eventstore.NewEvent{{Type: typ, Data: data}}
}

func ticks(n int) []eventstore.NewEvent {
	evs := make([]eventstore.NewEvent, n)
	for i := range evs {
		evs[i] = eventstore.NewEvent{Type: "tick"}
	}
	return evs
}
