package eventstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/eventstore/storetest"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// TestConcurrentWritersAndFollowingReader is the watermark proof: writers
// append to overlapping streams in transactions that commit out of position
// order, while a reader follows ReadAll. The reader must see every committed
// event exactly once, and each stream's versions gapless and increasing.
func TestConcurrentWritersAndFollowingReader(t *testing.T) {
	const (
		writers          = 12
		appendsPerWriter = 300
		streamsShared    = 6
	)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, dbg := newStore(t)
	tenants := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	streams := make([]eventlog.StreamID, streamsShared)
	streamTenant := map[eventlog.StreamID]uuid.UUID{}
	for i := range streams {
		streams[i] = stream(t)
		streamTenant[streams[i]] = tenants[i%len(tenants)]
	}

	var (
		committed   sync.Map // event id -> struct{}
		nCommitted  atomic.Int64
		writersDone = make(chan struct{})
		wg          sync.WaitGroup
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range appendsPerWriter {
				st := streams[rng.IntN(len(streams))]
				n := 1 + rng.IntN(3)
				evs := make([]eventstore.NewEvent, n)
				for i := range evs {
					evs[i] = eventstore.NewEvent{ID: uuid.Must(uuid.NewV7()), Type: "thing_happened", Data: map[string]int{"writer": w}}
				}
				a := eventstore.Append{Stream: st, TenantID: streamTenant[st], Expected: eventstore.Any(), Events: evs}
				var err error
				if w%3 == 0 {
					// A third of the writers append in a transaction of its
					// own that stays open a moment after its events, as
					// commands that write more than events do.
					err = appendAndLinger(ctx, s, dbg, a, time.Duration(rng.IntN(3000))*time.Microsecond)
				} else {
					_, err = s.Append(ctx, a)
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				for _, e := range evs {
					committed.Store(e.ID, struct{}{})
				}
				nCommitted.Add(int64(n))
			}
		}()
	}
	go func() { wg.Wait(); close(writersDone) }()
	// Meanwhile read-model transactions hold ids without appending, as the
	// projectors' batches do; the watermark must not need them to end.
	holdersDone := make(chan struct{})
	go func() { holdIDsUntil(ctx, t, dbg, writersDone); close(holdersDone) }()
	defer func() { <-holdersDone }()

	seen := map[uuid.UUID]bool{}
	lastVersion := map[eventlog.StreamID]int64{}
	var (
		pos       = eventlog.Start
		prev      eventlog.Position
		finishing bool
		deadline  = time.Now().Add(90 * time.Second)
	)
	for {
		batch, err := s.ReadAll(ctx, pos, 500)
		if err != nil {
			t.Fatalf("read all: %v", err)
		}
		for _, e := range batch {
			if seen[e.EventID] {
				t.Fatalf("event %s seen twice", e.EventID)
			}
			seen[e.EventID] = true
			if !prev.Less(e.Position) {
				t.Fatalf("positions not increasing: %+v after %+v", e.Position, prev)
			}
			prev = e.Position
			if want := lastVersion[e.Stream] + 1; e.StreamVersion != want {
				dumpStream(t, dbg, e.Stream, lastVersion[e.Stream]-1, e.StreamVersion+1)
				t.Fatalf("stream %s: version %d after %d: gap or reorder", e.Stream, e.StreamVersion, lastVersion[e.Stream])
			}
			lastVersion[e.Stream] = e.StreamVersion
			pos = e.Position
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-writersDone:
			// An append still committing holds the watermark back for a
			// moment: keep following until everything committed has been
			// read, within the deadline.
			if int64(len(seen)) >= nCommitted.Load() {
				finishing = true
			} else if time.Now().After(deadline) {
				t.Fatalf("after writers finished: read %d of %d committed events", len(seen), nCommitted.Load())
			}
			time.Sleep(5 * time.Millisecond)
		default:
			time.Sleep(time.Millisecond)
		}
		if finishing {
			break
		}
	}
	if t.Failed() {
		return
	}
	if int64(len(seen)) != nCommitted.Load() {
		t.Fatalf("reader saw %d events, writers committed %d", len(seen), nCommitted.Load())
	}
	committed.Range(func(k, _ any) bool {
		if !seen[k.(uuid.UUID)] {
			t.Fatalf("committed event %s never read", k)
		}
		return true
	})
	var total int64
	for _, v := range lastVersion {
		total += v
	}
	if total != nCommitted.Load() {
		t.Fatalf("stream versions sum to %d, want %d", total, nCommitted.Load())
	}
	t.Logf("%d writers, %d events over %d streams read exactly once", writers, len(seen), len(streams))
}

func TestEventsAreInsertOnly(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	tenant := uuid.New()
	if _, err := s.Append(ctx, eventstore.Append{Stream: stream(t), TenantID: tenant, Expected: eventstore.Any(), Events: oneEvent("x_happened", nil)}); err != nil {
		t.Fatal(err)
	}
	// Even the superuser is stopped by the triggers.
	admin := db.AdminConn(t)
	for _, stmt := range []string{
		`UPDATE events SET event_type = 'forged'`,
		`DELETE FROM events`,
		`TRUNCATE events`,
	} {
		_, err := admin.Exec(ctx, stmt)
		if err == nil || !strings.Contains(err.Error(), "insert-only") {
			t.Fatalf("%s: want insert-only rejection, got %v", stmt, err)
		}
	}
	// The service role has no UPDATE or DELETE privilege at all.
	for _, stmt := range []string{`UPDATE events SET event_type = 'forged'`, `DELETE FROM events`} {
		_, err := db.App.Exec(ctx, stmt)
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("app role %s: want permission denied, got %v", stmt, err)
		}
	}
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM events WHERE event_type = 'x_happened'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("event changed: %d rows, %v", n, err)
	}
}

func TestBadInputIsRejectedAndNothingIsWritten(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	storetest.BadInputIsRejected(t, s)
	var n int
	if err := db.AdminConn(t).QueryRow(ctx, `SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM streams) + (SELECT count(*) FROM commands)`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rejected input left %d rows behind (%v)", n, err)
	}
}

// appendAndLinger appends a in a transaction of its own (AppendTx) and
// commits it after pause.
func appendAndLinger(ctx context.Context, s *eventstore.Store, db *pgtest.DB, a eventstore.Append, pause time.Duration) error {
	return pgx.BeginFunc(ctx, db.App, func(tx pgx.Tx) error {
		if _, err := s.AppendTx(ctx, tx, a); err != nil {
			return err
		}
		time.Sleep(pause)
		return nil
	})
}

// holdIDsUntil runs short transactions that take an id and append nothing
// until done is closed.
func holdIDsUntil(ctx context.Context, t *testing.T, db *pgtest.DB, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		default:
		}
		err := pgx.BeginFunc(ctx, db.App, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `SELECT pg_current_xact_id(), pg_sleep(0.002)`)
			return err
		})
		if err != nil && ctx.Err() == nil {
			t.Errorf("read-model transaction: %v", err)
			return
		}
	}
}

// dumpStream logs a stretch of a stream with its transaction ids, to show on a
// failure whether log order and version order disagreed.
func dumpStream(t *testing.T, db *pgtest.DB, st eventlog.StreamID, from, to int64) {
	t.Helper()
	rows, err := db.AdminConn(t).Query(context.Background(), `SELECT stream_version, transaction_id::text, global_position
		FROM events WHERE stream_id = $1 AND stream_version BETWEEN $2 AND $3 ORDER BY stream_version`, st.String(), from, to)
	if err != nil {
		t.Logf("dump %s: %v", st, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var (
			v, p int64
			tx   string
		)
		if err := rows.Scan(&v, &tx, &p); err == nil {
			t.Logf("%s version=%d transaction_id=%s position=%d", st, v, tx, p)
		}
	}
}

// TestReadAllOrdersTransactionIDsAsNumbers plants events at transaction ids
// 9, 10 and 100 (as the superuser can) and checks ReadAll orders them as
// numbers: sorted as text, "10" and "100" would come before "9".
//
// The planted ids must lie below the read watermark (at most the cluster's
// next transaction id) or ReadAll rightly hides them. initdb alone uses
// several hundred transaction ids, so ids under 100 are below it on a cluster
// created a minute ago as on one that has run for months; the test checks that
// rather than assuming it.
func TestReadAllOrdersTransactionIDsAsNumbers(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	tenant := uuid.New()
	admin := db.AdminConn(t)
	var xmin uint64
	if err := admin.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`).Scan(&xmin); err != nil {
		t.Fatal(err)
	}
	if xmin <= 100 {
		t.Fatalf("the cluster's transaction watermark is %d: the planted ids 9, 10, 100 would not be readable", xmin)
	}
	for i, txid := range []string{"10", "9", "100"} {
		st := stream(t)
		if _, err := admin.Exec(ctx, `INSERT INTO streams (stream_id, stream_type, tenant_id, version) VALUES ($1, 'vm', $2, 1)`, st.String(), tenant); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec(ctx, `INSERT INTO events (transaction_id, stream_id, stream_type, stream_version, event_id, event_type, tenant_id, correlation_id, data)
			VALUES ($1::text::xid8, $2, 'vm', 1, $3, 'planted', $4, $3, $5)`, txid, st.String(), uuid.New(), tenant, fmt.Sprintf(`{"i":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	var got []uint64
	pos := eventlog.Start
	for {
		page, err := s.ReadAll(ctx, pos, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page[0].Position.TransactionID)
		pos = page[0].Position
	}
	if fmt.Sprint(got) != "[9 10 100]" {
		t.Fatalf("ReadAll order by transaction id: %v, want [9 10 100]", got)
	}
	head, _, err := s.Head(ctx)
	if err != nil || head.TransactionID != 100 {
		t.Fatalf("Head: %+v %v, want transaction 100", head, err)
	}
}
