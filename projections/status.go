package projections

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Status is how far a projector has got compared with the event store, for
// /readyz and `accountdb projections status`.
type Status struct {
	Projector  string
	Checkpoint eventlog.Position
	UpdatedAt  time.Time // when the checkpoint last moved; zero if never
	// Head is the newest committed event in log order (Start for an empty log),
	// HeadRecordedAt its time.
	Head           eventlog.Position
	HeadRecordedAt time.Time
	// Behind counts the committed events after the checkpoint, up to
	// MaxBehindCount; Lag is the age of the oldest of them (0 when caught up):
	// how stale the read model is.
	Behind int64
	Lag    time.Duration
}

// MaxBehindCount caps Status.Behind, so a status check on a projector far
// behind stays cheap.
const MaxBehindCount = 1_000_000

// CaughtUp reports whether the projector has applied every committed event.
func (s Status) CaughtUp() bool { return s.Behind == 0 }

// Status reports the runner's projector's status.
func (r *Runner) Status(ctx context.Context) (Status, error) {
	return ReadStatus(ctx, r.pool, r.p.Name())
}

// ReadStatus reports a projector's status. pool is the service role's pool:
// the event store is read through its cross-tenant read policy.
func ReadStatus(ctx context.Context, pool *pgxpool.Pool, projector string) (Status, error) {
	cp, err := ReadCheckpoint(ctx, pool, projector)
	if err != nil {
		return Status{}, err
	}
	st := Status{Projector: projector, Checkpoint: cp.Position, UpdatedAt: cp.UpdatedAt}
	err = tenantdb.ReadTx(ctx, pool, tenantdb.System(), func(tx pgx.Tx) error {
		var txid string
		err := tx.QueryRow(ctx, `SELECT transaction_id::text AS txid_text, global_position, recorded_at FROM events
			ORDER BY transaction_id DESC, global_position DESC LIMIT 1`).Scan(&txid, &st.Head.GlobalPosition, &st.HeadRecordedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if st.Head.TransactionID, err = strconv.ParseUint(txid, 10, 64); err != nil {
			return err
		}
		st.HeadRecordedAt = st.HeadRecordedAt.UTC()
		var lagSeconds float64
		err = tx.QueryRow(ctx, `SELECT count(*), coalesce(extract(epoch FROM clock_timestamp() - min(recorded_at)), 0)
			FROM (SELECT recorded_at FROM events
			      WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
			      ORDER BY transaction_id, global_position LIMIT $3) behind`,
			strconv.FormatUint(cp.Position.TransactionID, 10), cp.Position.GlobalPosition, MaxBehindCount).
			Scan(&st.Behind, &lagSeconds)
		st.Lag = time.Duration(max(lagSeconds, 0) * float64(time.Second))
		return err
	})
	if err != nil {
		return Status{}, fmt.Errorf("status of %s: %w", projector, err)
	}
	return st, nil
}
