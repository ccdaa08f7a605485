package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Beginner is what HoldingID begins a transaction on: a pool or a connection.
type Beginner interface {
	Begin(context.Context) (pgx.Tx, error)
}

// HoldingID begins a transaction on db that takes a transaction id at once
// and appends nothing, as a read-model write or an operator's open session
// does; it is rolled back when the test ends, or earlier by the caller.
func HoldingID(tb testing.TB, db Beginner) pgx.Tx {
	tb.Helper()
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		tb.Fatalf("pgtest: begin: %v", err)
	}
	tb.Cleanup(func() { _ = tx.Rollback(ctx) })
	if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		tb.Fatalf("pgtest: take a transaction id: %v", err)
	}
	return tx
}
