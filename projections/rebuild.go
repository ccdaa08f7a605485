package projections

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/schollz/progressbar/v3"
)

// RebuildResult describes a finished rebuild.
type RebuildResult struct {
	Projector  string
	Tables     []string
	Events     int64             // events applied to the fresh tables
	Checkpoint eventlog.Position // the projector's checkpoint after the swap
	Duration   time.Duration
}

// rebuildBatchSize is how many events one read of the log returns and one
// replay transaction applies: few transactions, and reads of the size
// ReadAll serves fastest (docs/BENCHMARKS.md, figure 3).
const rebuildBatchSize = 5000

// swapLockTimeout bounds how long the swap waits for readers of the old
// tables to finish; past it the rebuild fails and the old model stays.
const swapLockTimeout = "10s"

// Rebuild replays the whole event store into fresh copies of p's tables and
// swaps them in (blue/green). The old tables keep serving reads, and the live
// runner keeps applying to them, until the swap, which is one transaction:
// it stops the live runner (the projector's apply lock and checkpoint row
// lock), applies the events that arrived meanwhile, drops the old tables,
// moves the fresh ones into public and sets the checkpoint to the last event
// replayed. The live runner then skips what the rebuild applied and carries on.
//
// ownerPool must connect as the owner of the tables (see OpenOwnerPool): DDL
// needs it. Row-level security is forced on the owner too, so every event is
// applied under its tenant's scope, as in live mode. The fresh tables live in
// RebuildSchema until the swap. store reads the log as the service role.
// progress, if not nil, gets a progress bar. A failed rebuild changes nothing:
// the old tables and the checkpoint stay as they were.
func Rebuild(ctx context.Context, ownerPool *pgxpool.Pool, store *eventstore.Store, p Projector, progress io.Writer) (RebuildResult, error) {
	began := time.Now()
	if err := validate(p); err != nil {
		return RebuildResult{}, err
	}
	res := RebuildResult{Projector: p.Name(), Tables: p.Tables()}
	unlock, err := lockRebuild(ctx, ownerPool, p.Name())
	if err != nil {
		return res, err
	}
	defer unlock()

	if err := createFreshTables(ctx, ownerPool, p.Tables()); err != nil {
		return res, err
	}
	swapped := false
	defer func() {
		if !swapped {
			dropFreshTables(ownerPool, p.Tables())
		}
	}()

	total, err := countEvents(ctx, store)
	if err != nil {
		return res, err
	}
	bar := newProgressBar(progress, p.Name(), total)
	r := &replayer{pool: ownerPool, store: store, p: p, reacts: reactsTo(p), schema: RebuildSchema, bar: bar, total: total}

	// Replay everything readable now, one short transaction per batch, while
	// the next batch is being read.
	if err := r.replay(ctx); err != nil {
		return res, err
	}
	if err := r.swap(ctx); err != nil {
		return res, err
	}
	swapped = true
	bar.ChangeMax64(r.applied)
	_ = bar.Finish()

	res.Events, res.Checkpoint, res.Duration = r.applied, r.pos, time.Since(began)
	return res, nil
}

// lockRebuild takes the projector's rebuild lock, a session-level advisory
// lock held on a connection set aside for the rebuild's whole run: a second
// rebuild would otherwise drop the first one's fresh tables.
func lockRebuild(ctx context.Context, pool *pgxpool.Pool, projector string) (unlock func(), err error) {
	pc, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("rebuild lock: %w", err)
	}
	var held bool
	err = pc.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+rebuildLockNamespace+`, hashtext($1))`, projector).Scan(&held)
	if err != nil || !held {
		if err != nil {
			// It may have been granted before the error: end the session.
			_ = pc.Conn().Close(context.Background())
		}
		pc.Release()
		if err != nil {
			return nil, fmt.Errorf("rebuild lock: %w", err)
		}
		return nil, fmt.Errorf("rebuild %s: %w", projector, ErrRebuildInProgress)
	}
	conn := pc.Hijack()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Unlock explicitly: the server may end a closed session a moment
		// after the client has moved on. Closing releases it in any case.
		_, _ = conn.Exec(ctx, `SELECT pg_advisory_unlock(`+rebuildLockNamespace+`, hashtext($1))`, projector)
		_ = conn.Close(ctx)
	}, nil
}

// RebuildSchema holds the fresh tables while a rebuild fills them (migration
// 00005 creates it, owned by the owner role; the service role cannot see it).
const RebuildSchema = "projection_rebuild"

// createFreshTables creates, in RebuildSchema, an empty copy of each table
// with the original's row-level security, policies and grants, replacing any
// leftover of a failed rebuild.
func createFreshTables(ctx context.Context, pool *pgxpool.Pool, tables []string) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		defs := make([]tableDef, len(tables))
		for i, t := range tables {
			var err error
			if defs[i], err = describeTable(ctx, tx, t); err != nil {
				return err
			}
		}
		for _, d := range defs {
			stmts := append([]string{"DROP TABLE IF EXISTS " + pgx.Identifier{RebuildSchema, d.name}.Sanitize()},
				d.copyStatements(RebuildSchema)...)
			for _, stmt := range stmts {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", stmt, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create fresh tables: %w", err)
	}
	return nil
}

// dropFreshTables cleans up after a failed rebuild.
func dropFreshTables(pool *pgxpool.Pool, tables []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, t := range tables {
		_, _ = pool.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{RebuildSchema, t}.Sanitize())
	}
}

// countEvents is the progress bar's total to begin with: the highest global
// position, read from the primary key at once, where count(*) would scan the
// whole log first (seconds for a million events). Positions lost to rolled
// back appends make it an upper bound; the bar's total is set to the exact
// number replayed when the rebuild ends.
func countEvents(ctx context.Context, store *eventstore.Store) (int64, error) {
	var n int64
	err := tenantdb.ReadTx(ctx, store.Pool(), tenantdb.System(), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT coalesce(max(global_position), 0) FROM events`).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	return n, nil
}

func newProgressBar(w io.Writer, name string, total int64) *progressbar.ProgressBar {
	if w == nil {
		w = io.Discard
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("rebuild "+name),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("events"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { _, _ = fmt.Fprintln(w) }),
	)
}

// replayer applies the log, from Start, to the fresh tables.
type replayer struct {
	pool    *pgxpool.Pool
	store   *eventstore.Store
	p       Projector
	reacts  func(eventType string) bool
	schema  string
	bar     *progressbar.ProgressBar
	total   int64
	pos     eventlog.Position // the last event applied
	applied int64
}

// readBatch is one read of the log, or the error that ended reading.
type readBatch struct {
	evs []eventlog.Event
	err error
}

// replay applies the log from r.pos until a read comes back empty. A reader
// goroutine keeps the next batch ready, so reading the log (the service
// role's pool) and writing the fresh tables (the owner's) overlap.
func (r *replayer) replay(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan readBatch, 1)
	go func() {
		defer close(batches)
		pos := r.pos
		for {
			evs, err := r.store.ReadAll(ctx, pos, rebuildBatchSize)
			select {
			case batches <- readBatch{evs, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(evs) == 0 {
				return
			}
			pos = evs[len(evs)-1].Position
		}
	}()
	for b := range batches {
		if b.err != nil {
			return b.err
		}
		if len(b.evs) == 0 {
			return nil
		}
		err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error { return r.apply(ctx, tx, b.evs) })
		if err != nil {
			return fmt.Errorf("replay into %s: %w", r.schema, err)
		}
		r.advance(b.evs)
	}
	return ctx.Err()
}

// apply applies evs in tx with the fresh tables first on the search path, so
// the projector's unqualified table names resolve to them.
func (r *replayer) apply(ctx context.Context, tx pgx.Tx, evs []eventlog.Event) error {
	if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)",
		pgx.Identifier{r.schema}.Sanitize()+", public"); err != nil {
		return err
	}
	return applyReplayed(ctx, tx, r.p, r.reacts, evs)
}

func (r *replayer) advance(evs []eventlog.Event) {
	r.pos = evs[len(evs)-1].Position
	r.applied += int64(len(evs))
	if r.applied > r.total {
		r.total = r.applied
		r.bar.ChangeMax64(r.total)
	}
	_ = r.bar.Add64(int64(len(evs)))
}

// swap catches up and swaps the fresh tables in, in one transaction.
func (r *replayer) swap(ctx context.Context) error {
	var pending [][]eventlog.Event
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		pending = nil
		if _, err := tx.Exec(ctx, "SELECT set_config('lock_timeout', $1, true)", swapLockTimeout); err != nil {
			return err
		}
		// From here until commit the live runner cannot commit a batch.
		live, err := lockCheckpoint(ctx, tx, r.p.Name())
		if err != nil {
			return err
		}
		// Events committed since the replay's last read. This transaction now
		// holds a transaction id, so ReadAll's watermark stays below it: events
		// committed after this point are left to the live runner, which finds
		// the checkpoint set below and continues the chain from there.
		pos := r.pos
		for {
			evs, err := r.store.ReadAll(ctx, pos, rebuildBatchSize)
			if err != nil {
				return err
			}
			if len(evs) == 0 {
				break
			}
			if err := r.apply(ctx, tx, evs); err != nil {
				return err
			}
			pending = append(pending, evs)
			pos = evs[len(evs)-1].Position
		}
		if pos.Less(live) {
			return fmt.Errorf("%w: live checkpoint %d, rebuilt up to %d", ErrCheckpointAhead, live.GlobalPosition, pos.GlobalPosition)
		}
		if _, err := tx.Exec(ctx, "SELECT set_config('search_path', 'public', true)"); err != nil {
			return err
		}
		for _, t := range r.p.Tables() {
			if _, err := tx.Exec(ctx, "DROP TABLE "+pgx.Identifier{"public", t}.Sanitize()); err != nil {
				return fmt.Errorf("drop old %s: %w", t, err)
			}
			if _, err := tx.Exec(ctx, "ALTER TABLE "+pgx.Identifier{r.schema, t}.Sanitize()+" SET SCHEMA public"); err != nil {
				return fmt.Errorf("move fresh %s: %w", t, err)
			}
		}
		// Notified, so that waits on positions the swap covers wake at once.
		return saveAndNotifyCheckpoint(ctx, tx, r.p.Name(), pos)
	})
	if err != nil {
		var pgErr interface{ SQLState() string }
		if errors.As(err, &pgErr) && pgErr.SQLState() == "55P03" {
			return fmt.Errorf("swap %s: readers held the old tables past %s: %w", r.p.Name(), swapLockTimeout, err)
		}
		return fmt.Errorf("swap %s: %w", r.p.Name(), err)
	}
	for _, evs := range pending {
		r.advance(evs)
	}
	return nil
}
