package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Advisory lock namespaces (first key of the two-key form), apart from the
// event store's stream locks and from single-key locks.
const (
	applyLockNamespace   = "80" // 'P'rojector: held by every applying transaction
	rebuildLockNamespace = "82" // 'R'ebuild: held by a rebuild for its whole run
)

// lockForApplySQL serialises everything that moves a projector's checkpoint:
// live batches and rebuild's swap. The advisory lock comes first and the
// checkpoint row lock second in both, so they cannot deadlock, and both come
// before any read-model table is touched, so a swap never finds a live batch
// holding the table it is about to drop.
const lockForApplySQL = `SELECT pg_advisory_xact_lock(` + applyLockNamespace + `, hashtext($1))`

const ensureCheckpointSQL = `INSERT INTO checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`

const checkpointForUpdateSQL = `SELECT transaction_id, global_position FROM checkpoints WHERE name = $1 FOR UPDATE`

// lockAndReadCheckpointSQL is lockForApplySQL and checkpointForUpdateSQL in
// one statement. The order of the two locks still holds: the row lock is
// taken by the plan's LockRows node, above the join, so only once the join
// has a row, that is after the materialised CTE has taken the advisory lock.
// No row (a projector's first batch) takes no lock and returns nothing; the
// caller then falls back to the three statements that create the row.
const lockAndReadCheckpointSQL = `WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock(` + applyLockNamespace + `, hashtext($1)))
SELECT c.transaction_id, c.global_position FROM l, checkpoints c WHERE c.name = $1 FOR UPDATE OF c`

const saveCheckpointSQL = `UPDATE checkpoints SET transaction_id = $2, global_position = $3, updated_at = now() WHERE name = $1`

// saveAndNotifyCheckpointSQL is saveCheckpointSQL and the notification on
// checkpointChannel in one statement ($4 is the projector's name):
// PostgreSQL delivers it at commit, when the new checkpoint is visible.
const saveAndNotifyCheckpointSQL = `WITH u AS (` + saveCheckpointSQL + ` RETURNING 1)
SELECT pg_notify('` + checkpointChannel + `', $4) FROM u`

// lockCheckpoint takes the apply lock and the checkpoint row lock of a
// projector in tx and returns its checkpoint, creating the row if needed.
// Every batch of every projector pays it, so it is one statement once the
// row exists (it does after the first batch, for good: nothing deletes
// checkpoints), not the three that ensure the row on every call.
func lockCheckpoint(ctx context.Context, tx pgx.Tx, projector string) (eventlog.Position, error) {
	name := CheckpointName(projector)
	var txid, gp int64
	err := tx.QueryRow(ctx, lockAndReadCheckpointSQL, name).Scan(&txid, &gp)
	if errors.Is(err, pgx.ErrNoRows) {
		// The first batch ever: the advisory lock first, as everywhere.
		b := &pgx.Batch{}
		b.Queue(lockForApplySQL, name)
		b.Queue(ensureCheckpointSQL, name)
		b.Queue(checkpointForUpdateSQL, name).QueryRow(func(row pgx.Row) error { return row.Scan(&txid, &gp) })
		err = tx.SendBatch(ctx, b).Close()
	}
	if err != nil {
		return eventlog.Position{}, fmt.Errorf("lock checkpoint %s: %w", name, err)
	}
	return eventlog.Position{TransactionID: uint64(txid), GlobalPosition: gp}, nil
}

// saveAndNotifyCheckpoint is saveCheckpoint and the checkpoint's
// notification, in one statement.
func saveAndNotifyCheckpoint(ctx context.Context, tx pgx.Tx, projector string, pos eventlog.Position) error {
	name := CheckpointName(projector)
	if _, err := tx.Exec(ctx, saveAndNotifyCheckpointSQL, name, int64(pos.TransactionID), pos.GlobalPosition, projector); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", name, err)
	}
	return nil
}

// Checkpoint is where a projector has got to, and when it last moved.
type Checkpoint struct {
	Position  eventlog.Position
	UpdatedAt time.Time
}

// ReadCheckpoint returns a projector's checkpoint; a projector that has never
// run is at eventlog.Start. The checkpoints table has no row-level security,
// so this needs no tenant scope.
func ReadCheckpoint(ctx context.Context, pool *pgxpool.Pool, projector string) (Checkpoint, error) {
	var (
		txid, gp int64
		cp       Checkpoint
	)
	err := pool.QueryRow(ctx, `SELECT transaction_id, global_position, updated_at FROM checkpoints WHERE name = $1`,
		CheckpointName(projector)).Scan(&txid, &gp, &cp.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Checkpoint{}, nil
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read checkpoint %s: %w", CheckpointName(projector), err)
	}
	cp.Position = eventlog.Position{TransactionID: uint64(txid), GlobalPosition: gp}
	return cp, nil
}

// WaitFor blocks until projector's checkpoint is at or past pos, polling with
// a growing interval, or until ctx ends. It is how a query honours a client's
// consistency token (read-your-writes): bound ctx to what the caller will wait.
func WaitFor(ctx context.Context, pool *pgxpool.Pool, projector string, pos eventlog.Position) error {
	const maxInterval = 250 * time.Millisecond
	interval := 5 * time.Millisecond
	for {
		cp, err := ReadCheckpoint(ctx, pool, projector)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("wait for %s: %w", projector, ctx.Err())
			}
			return fmt.Errorf("wait for %s: %w", projector, err)
		}
		if !cp.Position.Less(pos) {
			return nil
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for %s to reach %d: %w", projector, pos.GlobalPosition, ctx.Err())
		case <-t.C:
		}
		interval = min(2*interval, maxInterval)
	}
}
