package eventstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Two streams of two tenants appended in one transaction commit together,
// and a conflict on the second rolls the first back too.
func TestAppendTxLockedSpansStreams(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	tenantA, tenantB := uuid.New(), uuid.New()
	a, b := stream(t), stream(t)
	both := func(expectB eventstore.ExpectedVersion) error {
		return pgx.BeginFunc(ctx, db.App, func(tx pgx.Tx) error {
			if err := s.LockStreamsTx(ctx, tx, b, a); err != nil {
				return err
			}
			if _, err := s.AppendTxLocked(ctx, tx, eventstore.Append{Stream: a, TenantID: tenantA, Expected: eventstore.Any(),
				Events: oneEvent("vm_created", nil)}); err != nil {
				return err
			}
			_, err := s.AppendTxLocked(ctx, tx, eventstore.Append{Stream: b, TenantID: tenantB, Expected: expectB,
				Events: oneEvent("pool_allocated", nil)})
			return err
		})
	}
	if err := both(eventstore.NoStream()); err != nil {
		t.Fatal(err)
	}
	va, _ := s.StreamVersion(ctx, tenantA, a)
	vb, _ := s.StreamVersion(ctx, tenantB, b)
	if va != 1 || vb != 1 {
		t.Fatalf("after commit: versions %d and %d, want 1 and 1", va, vb)
	}
	var conflict *eventstore.ConflictError
	if err := both(eventstore.NoStream()); !errors.As(err, &conflict) {
		t.Fatalf("second stream's stale version: %v, want a conflict", err)
	}
	if va, _ := s.StreamVersion(ctx, tenantA, a); va != 1 {
		t.Fatalf("the first stream kept an append whose transaction failed: version %d", va)
	}
}

func TestLockStreamsTxMustComeFirst(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	err := pgx.BeginFunc(ctx, db.App, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE probe (x int)`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO probe VALUES (1)`); err != nil {
			return err
		}
		return s.LockStreamsTx(ctx, tx, stream(t))
	})
	if !errors.Is(err, eventstore.ErrAppendNotFirstWrite) {
		t.Fatalf("locks after a write: %v, want ErrAppendNotFirstWrite", err)
	}
}
