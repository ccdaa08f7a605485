package tenantdb

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// MinServerVersionNum is the oldest PostgreSQL AccountDB runs against, as
// server_version_num: 13 brought xid8, pg_current_xact_id() and
// pg_current_snapshot(), on which the log's commit-order reads rest. CI runs
// 15.
const MinServerVersionNum = 130000

// VersionQuerier is what RequireServerVersion asks the server through: a
// pool (serve, dev) or a single connection (migrate).
type VersionQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// RequireServerVersion refuses a PostgreSQL older than MinServerVersionNum,
// naming both versions.
func RequireServerVersion(ctx context.Context, db VersionQuerier) error {
	var num, version string
	if err := db.QueryRow(ctx, `SELECT current_setting('server_version_num'), current_setting('server_version')`).Scan(&num, &version); err != nil {
		return fmt.Errorf("postgres version: %w", err)
	}
	return CheckServerVersion(num, version)
}

// CheckServerVersion refuses a server_version_num below the minimum; version
// is the server's own wording, for the message.
func CheckServerVersion(num, version string) error {
	n, err := strconv.Atoi(num)
	if err != nil {
		return fmt.Errorf("postgres server_version_num %q: not a number", num)
	}
	if n < MinServerVersionNum {
		return fmt.Errorf("PostgreSQL %s (server_version_num %d) is too old: AccountDB needs PostgreSQL %d or later (server_version_num %d)",
			version, n, MinServerVersionNum/10000, MinServerVersionNum)
	}
	return nil
}
