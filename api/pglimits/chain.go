package pglimits

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/jackc/pgx/v5"
)

var _ api.ChainRateCounter = (*Store)(nil)

// upsertSQL is hitSQL's UPSERT for key $k and window $w (placeholders
// named so two can share a statement), reading its row from src.
func upsertSQL(k, w, src string) string {
	return `INSERT INTO rate_counters AS c (key_hash, window_secs, window_start, count, prev_count)
SELECT ` + k + `, ` + w + `::integer, to_timestamp(floor(extract(epoch FROM clock_timestamp()) / ` + w + `::integer) * ` + w + `::integer), 1, 0` + src + `
ON CONFLICT (key_hash, window_secs) DO UPDATE SET
    prev_count = CASE WHEN c.window_start = EXCLUDED.window_start THEN c.prev_count
                      WHEN c.window_start = EXCLUDED.window_start - make_interval(secs => ` + w + `::integer) THEN c.count
                      ELSE 0 END,
    count = CASE WHEN c.window_start = EXCLUDED.window_start THEN c.count + 1 ELSE 1 END,
    window_start = EXCLUDED.window_start
RETURNING count, prev_count, extract(epoch FROM clock_timestamp() - window_start)::float8 AS elapsed`
}

// chainSQL counts two keys in one statement: the first always, the
// second only if the first's sliding-window rate, rounded as the API
// rounds it (half away from zero), is within $3. Both rows are written
// in one implicit transaction and one commit.
var chainSQL = `WITH first AS (` + upsertSQL("$1::bytea", "$2", "") + `),
pass AS (SELECT floor(prev_count * greatest(0, $2::integer - elapsed) / $2::integer + count + 0.5) <= $3 AS ok FROM first),
second AS (` + upsertSQL("$4::bytea", "$5", " FROM pass WHERE pass.ok") + `)
SELECT f.count, f.prev_count, f.elapsed, s.count, s.prev_count, s.elapsed FROM first f LEFT JOIN second s ON true`

// HitChain counts hits as Hit would one after another, stopping after
// the first over its N, in one round trip for a chain of two (the
// authenticated API's user and tenant limits).
func (s *Store) HitChain(ctx context.Context, hits []api.RateHit) ([]float64, error) {
	if len(hits) != 2 || (hits[0].Key == hits[1].Key && windowSecs(hits[0].Window) == windowSecs(hits[1].Window)) {
		return s.hitOneByOne(ctx, hits)
	}
	s1, s2 := windowSecs(hits[0].Window), windowSecs(hits[1].Window)
	s.noteWindow(max(s1, s2))
	h1, h2 := sha256.Sum256([]byte(hits[0].Key)), sha256.Sum256([]byte(hits[1].Key))
	var (
		c1, p1 int64
		e1     float64
		c2, p2 *int64 // NULL: the first was over its N, the second not counted
		e2     *float64
	)
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
	b.Queue(chainSQL, h1[:], s1, hits[0].N, h2[:], s2).QueryRow(func(row pgx.Row) error {
		return row.Scan(&c1, &p1, &e1, &c2, &p2, &e2)
	})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("rate counter: %w", err)
	}
	s.counted()
	out := []float64{slidingRate(c1, p1, e1, s1)}
	if c2 != nil {
		out = append(out, slidingRate(*c2, *p2, *e2, s2))
	}
	return out, nil
}

// hitOneByOne is HitChain for chains that one statement does not cover.
func (s *Store) hitOneByOne(ctx context.Context, hits []api.RateHit) ([]float64, error) {
	var out []float64
	for _, h := range hits {
		rate, err := s.Hit(ctx, h.Key, h.Window)
		if err != nil {
			return nil, err
		}
		out = append(out, rate)
		if math.Round(rate) > float64(h.N) {
			break
		}
	}
	return out, nil
}

func windowSecs(w time.Duration) int64 { return max(1, int64(math.Ceil(w.Seconds()))) }

// slidingRate weighs the previous window's count by how much of it still
// lies within one window of now (Hit's rate).
func slidingRate(count, prev int64, elapsed float64, secs int64) float64 {
	weight := max(0, float64(secs)-elapsed) / float64(secs)
	return float64(prev)*weight + float64(count)
}
