// Package pgthrottle is the login throttle (auth.Throttle) kept in
// PostgreSQL, in the login_throttle table (migrations/00011): every API
// replica counts the same failures, and a restart forgets no lockout.
//
// Each operation is one SQL statement: Allow a SELECT, Success a DELETE,
// Failure an INSERT ... ON CONFLICT DO UPDATE that computes the new state
// from the row as it is when the statement locks it, so concurrent failures
// of one key, from any number of replicas, are each counted exactly once.
// The clock is a statement parameter: ThrottleConfig.Now when set (tests),
// else PostgreSQL's statement_timestamp(), one clock for every replica.
//
// Only the SHA-256 of a key is stored (keys hold emails and addresses). It
// is a pseudonym, not anonymity: whoever reads the table can test a guessed
// email against it, as with the email_hash of login_failed events. Rows live
// for Window + MaxLockout after a key's last failure (75 minutes by
// default): every Failure deletes up to PruneBatch rows past that, oldest
// first, skipping rows other statements hold.
package pgthrottle

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PruneBatch bounds the forgotten rows one Failure deletes. Above one, so
// deletion outpaces the one row a failure may create.
const PruneBatch = 10

// Throttle is an auth.Throttle over a pool of the service role.
type Throttle struct {
	pool *pgxpool.Pool
	cfg  auth.ThrottleConfig
	// doublings is how many times Lockout doubles before reaching MaxLockout.
	doublings int
}

var _ auth.Throttle = (*Throttle)(nil)

// New returns a Throttle with cfg (zero fields defaulted) over pool.
func New(pool *pgxpool.Pool, cfg auth.ThrottleConfig) *Throttle {
	cfg = cfg.WithDefaults()
	n := 0
	for d := cfg.Lockout; d < cfg.MaxLockout; d *= 2 {
		n++
	}
	return &Throttle{pool: pool, cfg: cfg, doublings: n}
}

// now is the clock parameter: nil (SQL NULL) means the database's.
func (t *Throttle) now() *time.Time {
	if t.cfg.Now == nil {
		return nil
	}
	n := t.cfg.Now()
	return &n
}

func keyHash(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

const allowSQL = `
SELECT t.locked_until - n.now
FROM (SELECT coalesce($2::timestamptz, statement_timestamp()) AS now) n
JOIN login_throttle t ON t.key_hash = $1 AND t.locked_until > n.now`

// Allow implements auth.Throttle.
func (t *Throttle) Allow(ctx context.Context, key string) (bool, time.Duration, error) {
	var wait time.Duration
	err := t.pool.QueryRow(ctx, allowSQL, keyHash(key), t.now()).Scan(&wait)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return true, 0, nil
	case err != nil:
		return false, 0, fmt.Errorf("login throttle: allow: %w", err)
	}
	return false, wait, nil
}

// failureStep is the state after a failure at n.now, from the state o
// (failures, window_start, lockouts, locked_until, last_failure). It is
// auth.Throttle's rule, step by step:
//   - locked: only last_failure moves (a failure while locked neither counts
//     nor extends the lock);
//   - lk: the lockout count, reset after Horizon ($5) without failures;
//   - f, ws: the failures of the current window, this one included;
//   - locks: f reaches MaxFailures ($7): locked for Lockout ($3) doubled lk
//     times (at most $4 doublings), capped at MaxLockout ($6); the window
//     restarts.
//
// forget_at is when the row becomes indistinguishable from no row.
const failureStep = `
SELECT CASE WHEN c.locked THEN o.failures WHEN c.locks THEN 0 ELSE c.f END,
       CASE WHEN c.locked THEN o.window_start WHEN c.locks THEN n.now ELSE c.ws END,
       CASE WHEN c.locked THEN o.lockouts WHEN c.locks THEN c.lk + 1 ELSE c.lk END,
       CASE WHEN c.locks THEN n.now + least($3::interval * power(2, least(c.lk, $4::integer)), $6::interval)
            ELSE o.locked_until END,
       n.now,
       n.now + $5::interval
FROM (SELECT b.*, NOT b.locked AND b.f >= $7::integer AS locks
      FROM (SELECT coalesce(n.now < o.locked_until, false) AS locked,
                   CASE WHEN o.last_failure + $5::interval <= n.now THEN 0 ELSE o.lockouts END AS lk,
                   CASE WHEN o.window_start + $8::interval <= n.now THEN 0 ELSE o.failures END + 1 AS f,
                   CASE WHEN o.window_start + $8::interval <= n.now THEN n.now ELSE o.window_start END AS ws) b) c`

// failureSQL prunes forgotten rows (never the key's own: a statement may
// not change one row twice) and applies failureStep to the key's row, or
// to a fresh state when there is none. A concurrent first failure of the
// same key makes the INSERT conflict and go through DO UPDATE instead.
const failureSQL = `
WITH n AS (SELECT coalesce($2::timestamptz, statement_timestamp()) AS now),
pruned AS (
    DELETE FROM login_throttle WHERE key_hash IN (
        SELECT key_hash FROM login_throttle
        WHERE forget_at < (SELECT now FROM n) AND key_hash <> $1
        ORDER BY forget_at LIMIT $9 FOR UPDATE SKIP LOCKED))
INSERT INTO login_throttle AS t (key_hash, failures, window_start, lockouts, locked_until, last_failure, forget_at)
SELECT $1, s.* FROM n
CROSS JOIN LATERAL (SELECT 0 AS failures, n.now AS window_start, 0 AS lockouts,
                           NULL::timestamptz AS locked_until, NULL::timestamptz AS last_failure) o
CROSS JOIN LATERAL (` + failureStep + `) s
ON CONFLICT (key_hash) DO UPDATE SET (failures, window_start, lockouts, locked_until, last_failure, forget_at) = (
    SELECT s.* FROM n
    CROSS JOIN LATERAL (SELECT t.failures, t.window_start, t.lockouts, t.locked_until, t.last_failure) o
    CROSS JOIN LATERAL (` + failureStep + `) s)`

// Failure implements auth.Throttle.
func (t *Throttle) Failure(ctx context.Context, key string) error {
	c := t.cfg
	if _, err := t.pool.Exec(ctx, failureSQL, keyHash(key), t.now(), c.Lockout, t.doublings, c.Horizon(), c.MaxLockout,
		c.MaxFailures, c.Window, PruneBatch); err != nil {
		return fmt.Errorf("login throttle: failure: %w", err)
	}
	return nil
}

// Success implements auth.Throttle.
func (t *Throttle) Success(ctx context.Context, key string) error {
	if _, err := t.pool.Exec(ctx, `DELETE FROM login_throttle WHERE key_hash = $1`, keyHash(key)); err != nil {
		return fmt.Errorf("login throttle: success: %w", err)
	}
	return nil
}
