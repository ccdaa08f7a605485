package eventstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

func TestAppendTxCommitsWithTheCallersWrites(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	tenant := uuid.New()
	st := stream(t)
	activityRows := func() int {
		var n int
		if err := tenantdb.ReadTx(ctx, db.App, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM tenant_activity`).Scan(&n)
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	sideWrite := func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO tenant_activity VALUES ($1, 'vm', 'probe', 1, 1, now())`, tenant)
		return err
	}

	// Committed together.
	err := pgx.BeginFunc(ctx, db.App, func(tx pgx.Tx) error {
		if _, err := s.AppendTx(ctx, tx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(),
			Events: oneEvent("vm_created", nil)}); err != nil {
			return err
		}
		return sideWrite(tx) // runs under the tenant scope AppendTx set
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.StreamVersion(ctx, tenant, st); v != 1 || activityRows() != 1 {
		t.Fatalf("after commit: version %d, %d side rows", v, activityRows())
	}

	// Rolled back together: the side write fails (duplicate key), so the events go too.
	err = pgx.BeginFunc(ctx, db.App, func(tx pgx.Tx) error {
		if _, err := s.AppendTx(ctx, tx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.Exactly(1),
			Events: oneEvent("vm_started", nil)}); err != nil {
			return err
		}
		return sideWrite(tx)
	})
	if err == nil {
		t.Fatal("duplicate side write committed")
	}
	if v, _ := s.StreamVersion(ctx, tenant, st); v != 1 {
		t.Fatalf("events of a rolled-back transaction remain: version %d", v)
	}

	// A transaction that wrote first is refused: the stream lock would come too late.
	err = tenantdb.InTx(ctx, db.App, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE tenant_activity SET event_count = event_count + 1`); err != nil {
			return err
		}
		_, err := s.AppendTx(ctx, tx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.Any(), Events: oneEvent("vm_started", nil)})
		return err
	})
	if !errors.Is(err, eventstore.ErrAppendNotFirstWrite) {
		t.Fatalf("append after a write: want ErrAppendNotFirstWrite, got %v", err)
	}

	// A replayed command reports Replayed, so the caller can roll back its side writes.
	cmd := uuid.New()
	a := eventstore.Append{Stream: stream(t), TenantID: tenant, Expected: eventstore.NoStream(), CommandID: cmd, Events: oneEvent("vm_created", nil)}
	if _, err := s.Append(ctx, a); err != nil {
		t.Fatal(err)
	}
	var replayed bool
	_ = pgx.BeginFunc(ctx, db.App, func(tx pgx.Tx) error {
		res, err := s.AppendTx(ctx, tx, a)
		if err != nil {
			t.Errorf("replay in a transaction: %v", err)
		}
		replayed = res.Replayed
		return errors.New("roll back")
	})
	if !replayed {
		t.Fatal("replayed command not reported in a transaction")
	}
}
