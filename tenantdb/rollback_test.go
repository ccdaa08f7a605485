package tenantdb_test

import (
	"context"
	"testing"

	"github.com/accountdb/accountdb/tenantdb"
)

// Rollback ends a transaction begun by hand (BEGIN sent as a statement,
// no pgx.Tx), also one an error has aborted, and leaves a connection
// outside any transaction as it is: released, the connection is reused.
func TestRollbackEndsATransactionBegunByHand(t *testing.T) {
	ctx := context.Background()
	pool := openPool(t, tenantdb.PoolOptions{MaxConns: 1, ApplicationName: "accountdb-rollback-test"})
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tenantdb.Rollback(conn) // outside a transaction: nothing to do
	if _, err := conn.Exec(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT 1/0`); err == nil {
		t.Fatal("SELECT 1/0 succeeded")
	}
	if s := conn.Conn().PgConn().TxStatus(); s != 'E' {
		t.Fatalf("transaction status %q after the error, want E (aborted)", s)
	}
	pid := conn.Conn().PgConn().PID()
	tenantdb.Rollback(conn)
	if s := conn.Conn().PgConn().TxStatus(); s != 'I' {
		t.Fatalf("transaction status %q after Rollback, want I (idle)", s)
	}
	conn.Release()
	again, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Release()
	if again.Conn().PgConn().PID() != pid {
		t.Fatal("the connection was replaced, not reused, after its transaction was rolled back")
	}
}
