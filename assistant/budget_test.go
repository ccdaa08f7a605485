package assistant_test

import (
	"context"
	"testing"

	"github.com/accountdb/accountdb/assistant"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/google/uuid"
)

// TestPGBudgetCountsPerTenantUnderRLS: tokens add up per tenant and day,
// each tenant sees only its own count, and a tenant-scoped connection
// cannot read another's row even by naming it.
func TestPGBudgetCountsPerTenantUnderRLS(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	b := assistant.PGBudget{Pool: db.App}
	a, other := uuid.New(), uuid.New()
	for _, n := range []int64{120, 30, 0, -5} {
		if err := b.Add(ctx, a, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Add(ctx, other, 7); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Used(ctx, a); err != nil || n != 150 {
		t.Fatalf("tenant a used %d, %v; want 150", n, err)
	}
	if n, err := b.Used(ctx, uuid.New()); err != nil || n != 0 {
		t.Fatalf("a fresh tenant used %d, %v", n, err)
	}
	// Scoped to a, a query naming other's row finds nothing.
	conn, err := db.App.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT set_config('app.tenant_id', $1, true)`, a.String()); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM assistant_token_usage WHERE tenant_id = $1`, other).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Fatalf("tenant a's scope sees %d rows of another tenant", rows)
	}
}
