package projections

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func ownerPool(t *testing.T, e *env) *pgxpool.Pool {
	t.Helper()
	pool, err := OpenOwnerPool(context.Background(), e.db.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// tableShape is what must survive a swap: row-level security, policies,
// grants and indexes of tenant_activity.
type tableShape struct {
	RowSecurity, Force bool
	ACL                string
	Policies, Indexes  []string
}

func shapeOf(t *testing.T, q rowQuerier) tableShape {
	t.Helper()
	ctx := context.Background()
	var s tableShape
	rows, err := q.Query(ctx, `SELECT relrowsecurity, relforcerowsecurity, relacl::text FROM pg_class
		WHERE oid = 'public.tenant_activity'::regclass`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.ForEachRow(rows, []any{&s.RowSecurity, &s.Force, &s.ACL}, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	collect := func(sql string) []string {
		rows, err := q.Query(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	s.Policies = collect(`SELECT concat_ws(' | ', policyname, permissive, cmd, roles::text, qual, with_check)
		FROM pg_policies WHERE schemaname = 'public' AND tablename = 'tenant_activity' ORDER BY 1`)
	s.Indexes = collect(`SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'tenant_activity' ORDER BY 1`)
	return s
}

func TestRebuildEqualsIncremental(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	ts := tenants(3)
	e.startRelay(t)
	appendEvents(t, e.store, ts, 250)
	published := readEvents(t, e.store, 250)
	name := TenantActivity{}.Name()
	start(t, NewRunner(e.db.App, e.js, TenantActivity{}, testOptions(nil)))
	waitCaughtUp(t, e, name, published[len(published)-1].Position)

	admin := e.db.AdminConn(t)
	incremental := readActivity(t, admin)
	before, err := ReadCheckpoint(ctx, e.db.App, name)
	if err != nil {
		t.Fatal(err)
	}
	shape := shapeOf(t, admin)
	if !shape.RowSecurity || !shape.Force || len(shape.Policies) == 0 || !strings.Contains(shape.ACL, "accountdb_app=") {
		t.Fatalf("unexpected original table: %+v", shape)
	}

	var progress bytes.Buffer
	res, err := Rebuild(ctx, ownerPool(t, e), e.store, TenantActivity{}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 250 || res.Checkpoint != before.Position || res.Projector != name {
		t.Fatalf("result %+v, checkpoint before %+v", res, before.Position)
	}
	if d := diffRows(incremental, readActivity(t, admin)); d != "" {
		t.Fatalf("rebuilt model differs from the incremental one: %s", d)
	}
	after, err := ReadCheckpoint(ctx, e.db.App, name)
	if err != nil || after.Position != before.Position {
		t.Fatalf("checkpoint after rebuild %+v (%v), before %+v", after.Position, err, before.Position)
	}
	if !strings.Contains(progress.String(), "250/250") {
		t.Fatalf("progress output: %q", progress.String())
	}
	if got := shapeOf(t, admin); !equalShape(got, shape) {
		t.Fatalf("table after swap:\n%+v\nbefore:\n%+v", got, shape)
	}
	var leftovers int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1`, RebuildSchema).Scan(&leftovers); err != nil || leftovers != 0 {
		t.Fatalf("%d objects left in %s (%v)", leftovers, RebuildSchema, err)
	}

	// The service role reads the swapped-in table under a tenant's scope and
	// sees nothing without one.
	want := expectedActivity(published)
	for _, tenant := range ts {
		var got []activityRow
		if err := tenantdb.ReadTx(ctx, e.db.App, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
			got = readActivity(t, tx)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		mine := slices.DeleteFunc(slices.Clone(want), func(r activityRow) bool { return r.Tenant != tenant })
		if d := diffRows(mine, got); d != "" || len(mine) == 0 {
			t.Fatalf("tenant %s after rebuild: %s", tenant, d)
		}
	}
	if err := pgx.BeginFunc(ctx, e.db.App, func(tx pgx.Tx) error {
		if got := readActivity(t, tx); len(got) != 0 {
			t.Fatalf("no scope: read %d rows", len(got))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The live runner carries on into the swapped-in table.
	appendEvents(t, e.store, ts, 40)
	published = readEvents(t, e.store, 290)
	waitCaughtUp(t, e, name, published[len(published)-1].Position)
	if d := diffRows(expectedActivity(published), readActivity(t, admin)); d != "" {
		t.Fatalf("after rebuild and more events: %s", d)
	}
}

func equalShape(a, b tableShape) bool {
	return a.RowSecurity == b.RowSecurity && a.Force == b.Force && a.ACL == b.ACL &&
		slices.Equal(a.Policies, b.Policies) && slices.Equal(a.Indexes, b.Indexes)
}

// TestRebuildWhileWriting rebuilds while events keep being appended, relayed
// and applied by the live runner: after the swap the model must be exact.
func TestRebuildWhileWriting(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	ts := tenants(3)
	e.startRelay(t)
	appendEvents(t, e.store, ts, 400)
	// The rebuild replays what is readable when it runs: events below the
	// log's watermark, which an append still committing holds back for a
	// moment, so wait until all are readable before counting on the rebuild
	// to replay them.
	readEvents(t, e.store, 400)
	name := TenantActivity{}.Name()
	start(t, NewRunner(e.db.App, e.js, TenantActivity{}, testOptions(nil)))

	stopWriting := make(chan struct{})
	var wg sync.WaitGroup
	var writeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stopWriting:
				return
			default:
			}
			st, _ := eventlog.NewStreamID("vm", uuid.New())
			_, err := e.store.Append(ctx, eventstore.Append{Stream: st, TenantID: ts[i%len(ts)], Expected: eventstore.NoStream(),
				Events: []eventstore.NewEvent{{Type: "created"}, {Type: "started"}}})
			if err != nil {
				writeErr = err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	res, err := Rebuild(ctx, ownerPool(t, e), e.store, TenantActivity{}, nil)
	close(stopWriting)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if writeErr != nil {
		t.Fatal(writeErr)
	}
	if res.Events < 400 {
		t.Fatalf("rebuild applied %d events", res.Events)
	}

	// Let the runner catch up with the rest, and compare with the log.
	var total int
	if err := tenantdb.ReadTx(ctx, e.db.App, tenantdb.System(), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&total)
	}); err != nil {
		t.Fatal(err)
	}
	evs := readEvents(t, e.store, total)
	t.Logf("%d events in the log, %d replayed by the rebuild, %d written during it", total, res.Events, total-400)
	if total == 400 {
		t.Fatal("nothing was written during the rebuild")
	}
	waitCaughtUp(t, e, name, evs[len(evs)-1].Position)
	if d := diffRows(expectedActivity(evs), readActivity(t, e.db.AdminConn(t))); d != "" {
		t.Fatalf("after a rebuild under load (%d events, %d by rebuild): %s", len(evs), res.Events, d)
	}
}

func TestRebuildRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	owner := ownerPool(t, e)

	// As a superuser without the owner role: the fresh tables would have the
	// wrong owner (and bypass row-level security).
	superuser, err := pgxpool.New(ctx, e.db.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(superuser.Close)
	if _, err := Rebuild(ctx, superuser, e.store, TenantActivity{}, nil); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("superuser rebuild: want ErrNotOwner, got %v", err)
	}

	// A second rebuild of the same projector while one runs.
	unlock, err := lockRebuild(ctx, owner, TenantActivity{}.Name())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Rebuild(ctx, owner, e.store, TenantActivity{}, nil); !errors.Is(err, ErrRebuildInProgress) {
		t.Fatalf("concurrent rebuild: want ErrRebuildInProgress, got %v", err)
	}
	unlock()

	// An empty log rebuilds to an empty model at Start.
	res, err := Rebuild(ctx, owner, e.store, TenantActivity{}, nil)
	if err != nil || res.Events != 0 || res.Checkpoint != eventlog.Start {
		t.Fatalf("empty rebuild: %+v, %v", res, err)
	}
}
