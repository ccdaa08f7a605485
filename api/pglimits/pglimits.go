// Package pglimits keeps the API's rate limits and its caps on concurrent
// long requests in PostgreSQL, so that every `accountdb serve` replica
// enforces the same ones: with counts in process memory, N replicas behind
// a load balancer allowed N times each rate and each cap. PostgreSQL rather
// than the NATS key-value store: every request already depends on the
// database, a counter is one atomic UPSERT there (a KV counter is a read and
// a compare-and-set, retried under contention), and the login throttle
// already lives there (docs/SCALING.md, "Shared limits").
package pglimits

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultSlotTTL is how long a slot outlives the last renewal by the
// replica holding it: the longest a dead replica's streams keep counting.
const DefaultSlotTTL = 30 * time.Second

// Store is both the api.RateCounter and the api.SlotStore of one replica.
type Store struct {
	pool    *pgxpool.Pool
	holder  uuid.UUID // this replica, in request_slots.holder
	slotTTL time.Duration
	log     *slog.Logger

	hits      atomic.Uint64
	maxWindow atomic.Int64  // seconds: the longest window this replica counted
	sweep     chan struct{} // Run forgets dead counters when this is signalled

	sweepPeriod time.Duration
}

var (
	_ api.RateCounter = (*Store)(nil)
	_ api.SlotStore   = (*Store)(nil)
)

// New returns the store of one replica; Run renews its slots.
func New(pool *pgxpool.Pool, log *slog.Logger) *Store {
	return NewWithTTL(pool, log, DefaultSlotTTL)
}

// NewWithTTL is New with slots that outlive their last renewal by ttl.
func NewWithTTL(pool *pgxpool.Pool, log *slog.Logger, ttl time.Duration) *Store {
	if log == nil {
		log = slog.Default()
	}
	return &Store{pool: pool, holder: uuid.New(), slotTTL: ttl, log: log, sweep: make(chan struct{}, 1), sweepPeriod: sweepPeriod}
}

// hitSQL counts one request in the key's current window, on the database's
// clock (replicas' clocks may differ), rolling the window over when it has
// passed, and returns both windows' counts and how far into the current
// one it is.
const hitSQL = `
INSERT INTO rate_counters AS c (key_hash, window_secs, window_start, count, prev_count)
VALUES ($1, $2::integer, to_timestamp(floor(extract(epoch FROM clock_timestamp()) / $2::integer) * $2::integer), 1, 0)
ON CONFLICT (key_hash, window_secs) DO UPDATE SET
    prev_count = CASE WHEN c.window_start = EXCLUDED.window_start THEN c.prev_count
                      WHEN c.window_start = EXCLUDED.window_start - make_interval(secs => $2::integer) THEN c.count
                      ELSE 0 END,
    count = CASE WHEN c.window_start = EXCLUDED.window_start THEN c.count + 1 ELSE 1 END,
    window_start = EXCLUDED.window_start
RETURNING count, prev_count, extract(epoch FROM clock_timestamp() - window_start)::float8`

// Hit counts one request of key for a limit over window and returns the
// sliding-window rate including it.
func (s *Store) Hit(ctx context.Context, key string, window time.Duration) (float64, error) {
	secs := windowSecs(window)
	s.noteWindow(secs)
	h := sha256.Sum256([]byte(key))
	var (
		count, prev int64
		elapsed     float64
	)
	// One round trip, one implicit transaction, and no wait for the WAL
	// flush: a count lost in a database crash lets a few requests more
	// through, which is not worth an fsync per request.
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
	b.Queue(hitSQL, h[:], secs).QueryRow(func(row pgx.Row) error { return row.Scan(&count, &prev, &elapsed) })
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("rate counter: %w", err)
	}
	s.counted()
	return slidingRate(count, prev, elapsed, secs), nil
}

// noteWindow remembers the longest window counted: rows older than two
// of it are dead, which the sweep's index range uses.
func (s *Store) noteWindow(secs int64) {
	if secs > s.maxWindow.Load() {
		s.maxWindow.Store(secs)
	}
}

// sweepEvery is how many counting round trips make Run forget dead
// counters: new rows come only with counted requests, so sweeping in
// proportion to them keeps the table bounded whatever a spray of
// addresses tries.
const sweepEvery = 1024

// counted notes one more counting round trip and, every sweepEvery, asks
// Run to forget dead counters. Never on the request's own path: the DELETE
// it took inline was the slowest request of every thousand.
func (s *Store) counted() {
	if s.hits.Add(1)%sweepEvery == 0 {
		select {
		case s.sweep <- struct{}{}:
		default: // a sweep is already pending
		}
	}
}

// sweepLoop forgets dead counters at once, every sweepPeriod, and when
// counted asks, until ctx ends; apart from the slots' renewal, which a long
// sweep must not delay past their TTL.
func (s *Store) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.sweepPeriod)
	defer t.Stop()
	for {
		s.forgetDeadCounters(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.sweep:
		case <-t.C:
		}
	}
}

// sweepPeriod sweeps a replica that counts few requests too.
const sweepPeriod = time.Minute

// sweepBatch bounds one DELETE, so a sweep never holds many row locks
// that requests are waiting for.
const sweepBatch = 500

// forgetDeadCounters deletes the rows whose window ended two of their own
// windows ago, when they say nothing a missing row would not (the next
// request of the key starts both counts at zero), a batch at a time until
// none is left. Each row's own window_secs decides: a replica that has so
// far counted only minute limits must not forget another replica's hour
// limits (it did). The first condition, two of the longest windows this
// replica counted, is the window_start index's range: it skips the rows of
// current windows, which are most of them.
func (s *Store) forgetDeadCounters(ctx context.Context) {
	longest := s.maxWindow.Load()
	if longest == 0 {
		return // nothing counted here yet
	}
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		tag, err := s.pool.Exec(dctx, `DELETE FROM rate_counters WHERE ctid IN (
			SELECT ctid FROM rate_counters
			WHERE window_start < clock_timestamp() - make_interval(secs => $2::integer)
			  AND window_start < clock_timestamp() - make_interval(secs => 2 * window_secs)
			LIMIT $1)`, sweepBatch, 2*longest)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Debug("rate counters: cleanup failed; the next one retries", "err", err)
			}
			return
		}
		if tag.RowsAffected() < sweepBatch {
			return
		}
	}
}

// slotLockNamespace serialises slot decisions per tenant and kind (first
// key of the two-key advisory lock form; 80–82 are the projections').
const slotLockNamespace = 83

// acquireSQL counts the live slots of the tenant (and of the user among
// them) and takes one if both are under their caps, in one statement; the
// advisory lock queued before it in the same implicit transaction keeps two
// replicas from both taking the last slot.
const acquireSQL = `
WITH c AS (SELECT count(*) FILTER (WHERE user_key = $3) AS mine, count(*) AS total FROM request_slots
           WHERE tenant_key = $1 AND kind = $2 AND expires_at > clock_timestamp()),
ins AS (INSERT INTO request_slots (id, kind, user_key, tenant_key, holder, expires_at)
        SELECT $4, $2, $3, $1, $5, clock_timestamp() + make_interval(secs => $6::float8) FROM c
        WHERE c.mine < $7 AND c.total < $8 RETURNING 1)
SELECT c.mine, c.total, (SELECT count(*) FROM ins) FROM c`

// Acquire takes a slot of kind for user (of tenant) unless the user or the
// tenant already holds its cap of live slots, across every replica. One
// round trip.
func (s *Store) Acquire(ctx context.Context, kind string, user, tenant uuid.UUID, perUser, perTenant int) (func(), string, error) {
	id := uuid.New()
	var mine, total, taken int
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, slotLockNamespace, kind+":"+tenant.String())
	b.Queue(acquireSQL, tenant, kind, user, id, s.holder, s.slotTTL.Seconds(), perUser, perTenant).
		QueryRow(func(row pgx.Row) error { return row.Scan(&mine, &total, &taken) })
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, "", fmt.Errorf("request slots: %w", err)
	}
	switch {
	case taken == 1:
		return func() { s.release(id) }, "", nil
	case mine >= perUser:
		return nil, "user", nil
	default:
		return nil, "tenant", nil
	}
}

func (s *Store) release(id uuid.UUID) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `DELETE FROM request_slots WHERE id = $1`, id); err != nil {
		s.log.Warn("request slot release failed; it expires on its own", "err", err, "ttl", s.slotTTL)
	}
}

// Run renews this replica's slots every third of their TTL until ctx ends,
// then removes them (the requests they counted end with the process). It
// also forgets dead rate counters (sweepLoop).
func (s *Store) Run(ctx context.Context) error {
	swept := make(chan struct{})
	defer func() { <-swept }()
	go func() { defer close(swept); s.sweepLoop(ctx) }()
	t := time.NewTicker(s.slotTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_, err := s.pool.Exec(dctx, `DELETE FROM request_slots WHERE holder = $1`, s.holder)
			cancel()
			if err != nil && !errors.Is(err, context.Canceled) {
				s.log.Warn("request slots: could not remove this replica's slots; they expire on their own", "err", err)
			}
			return nil
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, s.slotTTL/3)
			_, err := s.pool.Exec(rctx, `UPDATE request_slots SET expires_at = clock_timestamp() + make_interval(secs => $2::float8)
				WHERE holder = $1`, s.holder, s.slotTTL.Seconds())
			cancel()
			if err != nil && ctx.Err() == nil {
				s.log.Warn("request slots: renewal failed; retrying", "err", err)
			}
		}
	}
}
