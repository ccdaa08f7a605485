package eventstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// TestReadAllWaitsForAnAppendInFlight shows the watermark at work: an append
// whose transaction took its id first but commits last is not skipped,
// because nothing at or after its transaction is read until it ends.
func TestReadAllWaitsForAnAppendInFlight(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	tenant := uuid.New()
	first, second := stream(t), stream(t)

	tx, err := db.App.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// The append lock, then an id: an append that has not written yet.
	if err := s.LockStreamsTx(ctx, tx, first); err != nil {
		t.Fatal(err)
	}
	var firstTxID uint64
	if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&firstTxID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, eventstore.Append{Stream: second, TenantID: tenant, Expected: eventstore.Any(), Events: oneEvent("later_happened", nil)}); err != nil {
		t.Fatal(err)
	}
	if got := readAllNow(t, s, eventlog.Start); len(got) != 0 {
		t.Fatalf("read %d events past an append in flight with an older transaction id", len(got))
	}
	if head, _, err := s.Head(ctx); err != nil || head != eventlog.Start {
		t.Fatalf("head %v err %v past an append in flight, want Start", head, err)
	}
	if _, err := s.AppendTxLocked(ctx, tx, eventstore.Append{Stream: first, TenantID: tenant, Expected: eventstore.Any(), Events: oneEvent("earlier_happened", nil)}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := readAllNow(t, s, eventlog.Start)
	if len(got) != 2 || got[0].Stream != first || got[1].Stream != second || got[0].Position.TransactionID != firstTxID {
		t.Fatalf("after the older append committed: %+v, want its event (transaction %d) and then the other", got, firstTxID)
	}
}

// TestReadAllDoesNotWaitForTransactionsThatCannotAppend: a transaction that
// holds an id but no append lock (a projector's batch, any read-model write)
// can never append (LockStreamsTx refuses it), so it does not hold readers
// back, in this database or another; nor does an append that holds its lock
// but has no id yet, since its id will come after everything read.
func TestReadAllDoesNotWaitForTransactionsThatCannotAppend(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	tenant := uuid.New()

	readModel := pgtest.HoldingID(t, db.App)
	other, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	pgtest.HoldingID(t, other)
	locked, err := db.App.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = locked.Rollback(ctx) }()
	waiting := stream(t)
	if err := s.LockStreamsTx(ctx, locked, waiting); err != nil {
		t.Fatal(err)
	}

	appended := stream(t)
	if _, err := s.Append(ctx, eventstore.Append{Stream: appended, TenantID: tenant, Expected: eventstore.Any(), Events: oneEvent("x_happened", nil)}); err != nil {
		t.Fatal(err)
	}
	got := readAllNow(t, s, eventlog.Start)
	if len(got) != 1 || got[0].Stream != appended {
		t.Fatalf("with a read-model transaction, another database's and a lock without an id in flight: read %+v, want the one event", got)
	}
	if head, _, err := s.Head(ctx); err != nil || head != got[0].Position {
		t.Fatalf("head %v err %v, want %v", head, err, got[0].Position)
	}
	// The lock holder appends now: its id is above everything already read.
	if _, err := s.AppendTxLocked(ctx, locked, eventstore.Append{Stream: waiting, TenantID: tenant, Expected: eventstore.Any(), Events: oneEvent("y_happened", nil)}); err != nil {
		t.Fatal(err)
	}
	if err := locked.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if rest := readAllNow(t, s, got[0].Position); len(rest) != 1 || rest[0].Stream != waiting {
		t.Fatalf("after the lock holder committed: %+v, want its event", rest)
	}
	// Last, since the refused transaction holds the lock until it rolls
	// back (every caller rolls back on an error) and would hold readers back
	// until then.
	if err := s.LockStreamsTx(ctx, readModel, stream(t)); !errors.Is(err, eventstore.ErrAppendNotFirstWrite) {
		t.Fatalf("a transaction with an id took an append lock: %v, want ErrAppendNotFirstWrite", err)
	}
}

// readAllNow is one ReadAll from after: no retry, since nothing these tests
// do not control can hold the watermark back.
func readAllNow(t *testing.T, s *eventstore.Store, after eventlog.Position) []eventlog.Event {
	t.Helper()
	got, err := s.ReadAll(context.Background(), after, 10)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
