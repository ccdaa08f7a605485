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

// LockStreamsTx, and AppendManyTx which takes the same locks, refuse to
// come after the transaction's first write; what AppendManyTx's round trip
// wrote is rolled back with the transaction.
func TestLockStreamsTxMustComeFirst(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	tenant := uuid.New()
	st := stream(t)
	for name, lock := range map[string]func(pgx.Tx) error{
		"LockStreamsTx": func(tx pgx.Tx) error { return s.LockStreamsTx(ctx, tx, st) },
		"AppendManyTx": func(tx pgx.Tx) error {
			_, err := s.AppendManyTx(ctx, tx, []eventstore.Append{{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(), Events: oneEvent("vm_created", nil)}})
			return err
		},
	} {
		err := pgx.BeginFunc(ctx, db.App, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `CREATE TEMP TABLE probe (x int)`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO probe VALUES (1)`); err != nil {
				return err
			}
			return lock(tx)
		})
		if !errors.Is(err, eventstore.ErrAppendNotFirstWrite) {
			t.Fatalf("%s after a write: %v, want ErrAppendNotFirstWrite", name, err)
		}
	}
	if v, _ := s.StreamVersion(ctx, tenant, st); v != 0 {
		t.Fatalf("AppendManyTx's append survived its refusal: version %d", v)
	}
}

var errRolledBack = errors.New("rolled back")

// Appends sent at once: all land, in order, with their versions; a repeat
// of a recorded command among them ends the results with its first answer,
// marked Replayed, and a stale version is a conflict.
func TestAppendManyTx(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	tenant := uuid.New()
	a, b := stream(t), stream(t)
	cmd := uuid.New()
	many := func(apps ...eventstore.Append) (res []eventstore.AppendResult, err error) {
		err = pgx.BeginFunc(ctx, db.App, func(tx pgx.Tx) error {
			if res, err = s.AppendManyTx(ctx, tx, apps); err == nil && res[len(res)-1].Replayed {
				return errRolledBack // as the caller must
			}
			return err
		})
		if errors.Is(err, errRolledBack) {
			err = nil
		}
		return res, err
	}
	res, err := many(eventstore.Append{Stream: a, TenantID: tenant, Expected: eventstore.NoStream(), CommandID: cmd, Events: oneEvent("vm_created", nil)},
		eventstore.Append{Stream: b, TenantID: tenant, Expected: eventstore.NoStream(), Events: oneEvent("pool_allocated", nil)},
		eventstore.Append{Stream: b, TenantID: tenant, Expected: eventstore.Exactly(1), Events: oneEvent("pool_allocated", nil)})
	if err != nil || len(res) != 3 || res[0].Stream != a || res[2].LastVersion != 2 || res[2].LastPosition <= res[1].LastPosition {
		t.Fatalf("results %+v %v", res, err)
	}
	res, err = many(eventstore.Append{Stream: b, TenantID: tenant, Expected: eventstore.Exactly(2), Events: oneEvent("pool_allocated", nil)},
		eventstore.Append{Stream: a, TenantID: tenant, Expected: eventstore.NoStream(), CommandID: cmd, Events: oneEvent("vm_created", nil)},
		eventstore.Append{Stream: b, TenantID: tenant, Expected: eventstore.Exactly(3), Events: oneEvent("pool_allocated", nil)})
	if err != nil || len(res) != 2 || !res[1].Replayed || res[1].LastVersion != 1 {
		t.Fatalf("with a repeat: %+v %v", res, err)
	}
	var conflict *eventstore.ConflictError
	if _, err := many(eventstore.Append{Stream: b, TenantID: tenant, Expected: eventstore.Exactly(1), Events: oneEvent("pool_allocated", nil)}); !errors.As(err, &conflict) {
		t.Fatalf("stale version: %v, want a conflict", err)
	}
	if vb, _ := s.StreamVersion(ctx, tenant, b); vb != 2 {
		t.Fatalf("stream b at %d, want 2 (the other transactions rolled back)", vb)
	}
}
