package projections_test

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/internal/authtest"
	"github.com/accountdb/accountdb/internal/domaintest"
	"github.com/accountdb/accountdb/internal/natstest"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/projections"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"
)

// TestProjectorConformance holds every projector the service registers
// (app.Projectors, so a new one is covered without being named here) to
// three promises, on a realistic corpus (domaintest.Corpus) appended
// through the real event store:
//
//   - the corpus exercises it: every event type it declares occurs, and
//     every table it owns gets rows;
//   - the read model the running service builds live (relay, JetStream,
//     runner, as `accountdb serve` wires them) equals the one `accountdb
//     projections rebuild` builds from the event store;
//   - it reacts to no event type it does not declare: a rebuild fed only the
//     declared types builds the same model.
func TestProjectorConformance(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	sys := startService(t, db)

	r := rand.New(rand.NewPCG(10, 5))
	appended := appendCorpus(t, sys.Store, domaintest.Corpus(r, 3), r)
	evs := readLog(t, sys.Store, appended)
	corpusTypes := map[string]bool{}
	for _, e := range evs {
		corpusTypes[e.Type] = true
	}
	last := evs[len(evs)-1].Position
	for _, p := range app.Projectors() {
		waitCtx, cancel := context.WithTimeout(ctx, patience)
		err := projections.WaitFor(waitCtx, db.App, p.Name(), last)
		cancel()
		if err != nil {
			t.Fatalf("%s live: %v", p.Name(), err)
		}
	}

	// As `accountdb projections rebuild` does it.
	owner, err := projections.OpenOwnerPool(ctx, db.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(owner.Close)
	store := app.NewStore(eventstore.New(db.App, nil))
	// A superuser reads every tenant's rows.
	admin, err := pgxpool.New(ctx, db.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)

	for _, p := range app.Projectors() {
		t.Run(p.Name(), func(t *testing.T) {
			t.Parallel() // rebuilds of different projectors do not interfere
			declared := p.EventTypes()
			if declared == nil { // every event: the corpus must have every type
				declared = domain.EventTypes()
			}
			for _, typ := range declared {
				if !corpusTypes[typ] {
					t.Errorf("%s handles %s, which the corpus lacks: add it to domaintest.Corpus", p.Name(), typ)
				}
			}
			live := dumpModel(t, admin, p)
			for _, d := range live {
				if len(d.rows) == 0 {
					t.Errorf("the corpus leaves %s's table %s empty: extend domaintest.Corpus", p.Name(), d.table)
				}
			}

			res, err := projections.Rebuild(ctx, owner, store, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Events != int64(len(evs)) || res.Checkpoint != last {
				t.Errorf("rebuild replayed %d events up to %+v; the log has %d up to %+v", res.Events, res.Checkpoint, len(evs), last)
			}
			if d := diffModels("live", live, "rebuilt", dumpModel(t, admin, p)); d != "" {
				t.Errorf("%s rebuilt from the event store differs from its live read model:\n%s", p.Name(), d)
			}

			if p.EventTypes() == nil {
				return
			}
			if _, err := projections.Rebuild(ctx, owner, store, declaredOnly{p}, nil); err != nil {
				t.Fatal(err)
			}
			if d := diffModels("all events", live, "declared types only", dumpModel(t, admin, p)); d != "" {
				t.Errorf("%s reacts to event types its EventTypes does not declare:\n%s", p.Name(), d)
			}
		})
	}
}

// declaredOnly hands its projector only the event types it declares.
type declaredOnly struct{ projections.Projector }

func (d declaredOnly) Apply(ctx context.Context, tx pgx.Tx, e eventlog.Event) error {
	if !slices.Contains(d.EventTypes(), e.Type) {
		return nil
	}
	return d.Projector.Apply(ctx, tx, e)
}

// startService runs the core service as `accountdb serve` does, with every
// registered projector live, until the test ends.
func startService(t *testing.T, db *pgtest.DB) *app.System {
	t.Helper()
	keys := authtest.KeySet(t)
	ns := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	sys, err := app.Start(ctx, app.Config{AppDatabaseURL: db.AppURL, NATSURL: ns.URL(), NATSOptions: ns.CoreOptions(t), HTTPAddr: "127.0.0.1:0",
		Identity: app.Identity{Keys: keys}}, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sys.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service: %v", err)
		}
	})
	return sys
}

// appendCorpus appends the streams' events as commands would, one to three
// events per append, from several goroutines at once, so that the log
// interleaves streams and tenants, transactions commit out of order, and the
// live runners see batches that cut across all of them. It returns how many
// events it appended.
func appendCorpus(t *testing.T, s *eventstore.Store, streams []domaintest.Stream, r *rand.Rand) int {
	t.Helper()
	const writers = 4
	appends := make([][]eventstore.Append, writers) // each writer's, in order
	total := 0
	for i, st := range streams {
		for written := 0; written < len(st.Events); {
			expected := eventstore.NoStream()
			if written > 0 {
				expected = eventstore.Exactly(int64(written))
			}
			a := eventstore.Append{Stream: st.ID, TenantID: st.Tenant, Expected: expected}
			for _, e := range st.Events[written:min(written+1+r.IntN(3), len(st.Events))] {
				a.Events = append(a.Events, eventstore.NewEvent{Type: e.EventType(), Data: e})
			}
			appends[i%writers] = append(appends[i%writers], a)
			written += len(a.Events)
			total += len(a.Events)
		}
	}
	var g errgroup.Group
	for _, mine := range appends {
		// A writer's appends alternate between its streams.
		slices.SortStableFunc(mine, func(a, b eventstore.Append) int {
			av, _ := a.Expected.Version()
			bv, _ := b.Expected.Version()
			return cmp.Compare(av, bv)
		})
		g.Go(func() error {
			for _, a := range mine {
				if _, err := s.Append(context.Background(), a); err != nil {
					return fmt.Errorf("append to %s: %w", a.Stream, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return total
}

// readLog reads the whole log, n events, waiting for them to pass ReadAll's
// watermark.
func readLog(t *testing.T, s *eventstore.Store, n int) []eventlog.Event {
	t.Helper()
	var out []eventlog.Event
	deadline := time.Now().Add(patience)
	for len(out) < n {
		after := eventlog.Start
		if len(out) > 0 {
			after = out[len(out)-1].Position
		}
		evs, err := s.ReadAll(context.Background(), after, n-len(out))
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d events became readable", len(out), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		out = append(out, evs...)
	}
	return out
}

// patience bounds the waits for the watermark and the live runners, generous
// because CI runs every package at once on two cores.
const patience = 30 * time.Second
