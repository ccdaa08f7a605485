package tenantdb

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Rollback ends the transaction its holder began by hand on conn (a group
// commit sends BEGIN in the round trip of its first statements, so it has
// no pgx.Tx), if one is open. It does not depend on the caller's context,
// which may be why the transaction failed; if even the ROLLBACK fails, conn
// is closed, and the pool replaces it when it is released.
func Rollback(conn *pgxpool.Conn) {
	if conn.Conn().PgConn().TxStatus() == 'I' {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `ROLLBACK`); err != nil && !errors.Is(err, context.Canceled) {
		_ = conn.Conn().Close(ctx)
	}
}
