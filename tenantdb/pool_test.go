package tenantdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5/pgxpool"
)

// openPool opens a pool on the test server's administrator URL, closed when
// the test ends.
func openPool(t *testing.T, opts tenantdb.PoolOptions) *pgxpool.Pool {
	t.Helper()
	url := pgtest.AdminURL()
	pool, err := tenantdb.Open(context.Background(), url, opts)
	if err != nil {
		t.Fatalf("PostgreSQL is required at %s: %v", tenantdb.Redact(url), err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// A pool with MinConns opens them at once, without a request asking, and
// spreads the recycling of its connections; MinConns never exceeds
// MaxConns.
func TestOpenKeepsMinConnsOpen(t *testing.T) {
	pool := openPool(t, tenantdb.PoolOptions{MaxConns: 4, MinConns: 3, ApplicationName: "accountdb-pool-test"})
	deadline := time.Now().Add(10 * time.Second)
	for pool.Stat().TotalConns() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := pool.Stat().TotalConns(); n != 3 || pool.Stat().AcquireCount() != 0 {
		t.Fatalf("MinConns 3: %d connections opened, %d acquired", n, pool.Stat().AcquireCount())
	}
	if j := pool.Config().MaxConnLifetimeJitter; j <= 0 {
		t.Fatalf("connections are all recycled at the same age (jitter %s)", j)
	}

	if c := openPool(t, tenantdb.PoolOptions{MaxConns: 2, MinConns: 5}).Config(); c.MinConns != 2 || c.MaxConns != 2 {
		t.Fatalf("MinConns 5 over MaxConns 2: min %d max %d", c.MinConns, c.MaxConns)
	}
	if c := openPool(t, tenantdb.PoolOptions{MaxConns: 2}).Config(); c.MinConns != 0 {
		t.Fatalf("a pool without MinConns keeps %d open", c.MinConns)
	}
}
