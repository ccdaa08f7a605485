package projections

import (
	"context"
	"slices"
	"testing"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// ignoresAll declares one event type that never occurs: every batch it sees
// is one of ignored events. Apply must never be called.
type ignoresAll struct{ t *testing.T }

func (ignoresAll) Name() string         { return "ignores_all" }
func (ignoresAll) Tables() []string     { return nil }
func (ignoresAll) EventTypes() []string { return []string{"never_appended"} }
func (p ignoresAll) Apply(context.Context, pgx.Tx, eventlog.Event) error {
	p.t.Errorf("Apply called for an event of a type not declared")
	return nil
}

// chain is n deliveries of an ignored type after eventlog.Start, each
// following the previous one in the log.
func chain(n int) []delivery {
	ds := make([]delivery, n)
	prev := eventlog.Start
	for i := range ds {
		pos := eventlog.Position{TransactionID: uint64(i + 1), GlobalPosition: int64(i + 1)}
		ds[i] = delivery{event: eventlog.Event{Position: pos, Type: "something_else"}, prev: prev}
		prev = pos
	}
	return ds
}

// TestIgnoredBatchesMoveTheCheckpoint: a batch of ignored events moves the
// checkpoint without a transaction of its own (a compare-and-set against
// the checkpoint the runner last committed); when that checkpoint has moved
// meanwhile (another runner, a rebuild's swap) the batch is planned again
// under the locks, so what it finds already applied is done, not applied
// twice.
func TestIgnoredBatchesMoveTheCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	r := NewRunner(db.App, nil, ignoresAll{t}, testOptions(nil))
	ds := chain(5)
	checkpoint := func() eventlog.Position {
		t.Helper()
		cp, err := ReadCheckpoint(ctx, db.App, r.p.Name())
		if err != nil {
			t.Fatal(err)
		}
		return cp.Position
	}

	// The first batch: nothing known yet, so the locked path (which also
	// creates the checkpoint row).
	p, _, err := r.applyBatch(ctx, ds[:1])
	if err != nil || len(p.apply) != 1 || checkpoint() != ds[0].event.Position {
		t.Fatalf("first batch: plan %+v, %v, checkpoint %+v", p, err, checkpoint())
	}
	// Then the fast path: the runner knows where it left the checkpoint. It
	// takes no apply lock (a transaction holds it here throughout), only the
	// checkpoint's row for the UPDATE.
	holder, err := db.AdminConn(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback(ctx) }()
	if _, err := holder.Exec(ctx, lockForApplySQL, CheckpointName(r.p.Name())); err != nil {
		t.Fatal(err)
	}
	bctx, cancel := context.WithTimeout(ctx, patience) // the locked path would wait for the holder
	defer cancel()
	p, last, err := r.applyBatch(bctx, ds[1:2])
	if err != nil || len(p.apply) != 1 || last.Position != ds[1].event.Position || checkpoint() != ds[1].event.Position {
		t.Fatalf("second batch: plan %+v, %v, checkpoint %+v", p, err, checkpoint())
	}

	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// Another runner applies event 3 meanwhile.
	if _, err := db.AdminConn(t).Exec(ctx, saveCheckpointSQL, CheckpointName(r.p.Name()), 3, 3); err != nil {
		t.Fatal(err)
	}
	p, _, err = r.applyBatch(ctx, ds[2:4])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.done, []int{0}) || !slices.Equal(p.apply, []int{1}) || checkpoint() != ds[3].event.Position {
		t.Fatalf("after the checkpoint moved elsewhere: plan %+v, checkpoint %+v; want event 3 done, 4 applied", p, checkpoint())
	}
	// And the fast path again from there.
	if p, _, err = r.applyBatch(ctx, ds[4:]); err != nil || len(p.apply) != 1 || checkpoint() != ds[4].event.Position {
		t.Fatalf("last batch: plan %+v, %v, checkpoint %+v", p, err, checkpoint())
	}
}

// TestWaitsForIgnoredPositions: a consistency token naming a position of an
// event the projector ignores is served by the checkpoint's notification as
// promptly as any other (the fast path notifies as the locked one does).
func TestWaitsForIgnoredPositions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := NewNotifier(e.db.App, quietLogger())
	go func() { _ = n.Run(ctx) }()
	e.startRelay(t)
	appendEvents(t, e.store, tenants(2), 30)
	published := readEvents(t, e.store, 30)
	r := NewRunner(e.db.App, e.js, ignoresAll{t}, testOptions(nil))
	start(t, r)
	for _, ev := range published {
		wctx, wcancel := context.WithTimeout(ctx, patience)
		err := n.WaitFor(wctx, e.db.App, r.p.Name(), ev.Position)
		wcancel()
		if err != nil {
			t.Fatalf("wait for %d: %v", ev.Position.GlobalPosition, err)
		}
	}
	// More events after the runner caught up: each batch now takes the
	// fast path, and the waits are still served.
	appendEvents(t, e.store, tenants(1), 10)
	published = readEvents(t, e.store, 40)
	wctx, wcancel := context.WithTimeout(ctx, patience)
	defer wcancel()
	if err := n.WaitFor(wctx, e.db.App, r.p.Name(), published[len(published)-1].Position); err != nil {
		t.Fatal(err)
	}
}

// TestMoveGroup: one statement carries several projectors' moves; each
// moves only from the value it expected, two moves of one checkpoint never
// both succeed, and every move that succeeded is notified.
func TestMoveGroup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	admin := db.AdminConn(t)
	if _, err := admin.Exec(ctx, `INSERT INTO checkpoints (name) VALUES ('projector:ga'), ('projector:gb'), ('projector:gc')`); err != nil {
		t.Fatal(err)
	}
	listener := db.AdminConn(t)
	if _, err := listener.Exec(ctx, `LISTEN `+checkpointChannel); err != nil {
		t.Fatal(err)
	}
	at := func(n int) eventlog.Position {
		return eventlog.Position{TransactionID: uint64(n), GlobalPosition: int64(n)}
	}
	req := func(projector string, from, to int) *moveRequest {
		return &moveRequest{name: CheckpointName(projector), projector: projector, from: at(from), to: at(to), done: make(chan struct{})}
	}
	group := []*moveRequest{req("ga", 0, 1), req("gb", 0, 2), req("ga", 0, 3), req("gc", 5, 6)}
	moveGroupOf(db.App).run(ctx, group)

	a1, b, a3, c := group[0].moved, group[1].moved, group[2].moved, group[3].moved
	if a1 == a3 || !b || c {
		t.Fatalf("moved: ga→1 %v, gb→2 %v, ga→3 %v, gc from a stale 5 %v", a1, b, a3, c)
	}
	wantA := at(1)
	if a3 {
		wantA = at(3)
	}
	for name, want := range map[string]eventlog.Position{"ga": wantA, "gb": at(2), "gc": eventlog.Start} {
		if cp, err := ReadCheckpoint(ctx, db.App, name); err != nil || cp.Position != want {
			t.Errorf("%s: checkpoint %+v, %v; want %+v", name, cp.Position, err, want)
		}
	}
	var notified []string
	for len(notified) < 2 {
		nctx, cancel := context.WithTimeout(ctx, patience)
		n, err := listener.WaitForNotification(nctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		notified = append(notified, n.Payload)
	}
	if slices.Sort(notified); !slices.Equal(notified, []string{"ga", "gb"}) {
		t.Fatalf("notified %v, want ga and gb", notified)
	}
}

// TestMoveGroupConcurrent: runners moving at once all get their answers
// (whoever runs a round, the others wait for it or run the next), and each
// checkpoint ends where its runner moved it.
func TestMoveGroupConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	const runners, moves = 6, 20
	names := make([]string, runners)
	for i := range names {
		names[i] = "gc" + string(rune('a'+i))
		if _, err := db.App.Exec(ctx, ensureCheckpointSQL, CheckpointName(names[i])); err != nil {
			t.Fatal(err)
		}
	}
	g := moveGroupOf(db.App)
	errs := make(chan string, runners)
	for _, name := range names {
		go func() {
			for n := range moves {
				from := eventlog.Position{TransactionID: uint64(n), GlobalPosition: int64(n)}
				to := eventlog.Position{TransactionID: uint64(n + 1), GlobalPosition: int64(n + 1)}
				if !g.move(ctx, name, from, to) {
					errs <- name + ": a move from the checkpoint it expected failed"
					return
				}
			}
			errs <- ""
		}()
	}
	for range runners {
		if msg := <-errs; msg != "" {
			t.Error(msg)
		}
	}
	for _, name := range names {
		if cp, err := ReadCheckpoint(ctx, db.App, name); err != nil || cp.Position.GlobalPosition != moves {
			t.Errorf("%s: %+v, %v", name, cp.Position, err)
		}
	}
}

// TestMoveGroupSkipsLockedRows: a checkpoint whose row someone holds (a
// rebuild's swap) is not waited for: its move fails (its runner then takes
// the locked path) and the others' moves go through at once.
func TestMoveGroupSkipsLockedRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	admin := db.AdminConn(t)
	if _, err := admin.Exec(ctx, `INSERT INTO checkpoints (name) VALUES ('projector:la'), ('projector:lb')`); err != nil {
		t.Fatal(err)
	}
	holder, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback(ctx) }()
	if _, err := holder.Exec(ctx, `SELECT 1 FROM checkpoints WHERE name = 'projector:la' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	to := eventlog.Position{TransactionID: 1, GlobalPosition: 1}
	group := []*moveRequest{
		{name: CheckpointName("la"), projector: "la", from: eventlog.Start, to: to, done: make(chan struct{})},
		{name: CheckpointName("lb"), projector: "lb", from: eventlog.Start, to: to, done: make(chan struct{})},
	}
	moveGroupOf(db.App).run(ctx, group) // returns while the lock is held
	if group[0].moved || !group[1].moved {
		t.Fatalf("moved: la (locked) %v, lb %v", group[0].moved, group[1].moved)
	}
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]eventlog.Position{"la": eventlog.Start, "lb": to} {
		if cp, err := ReadCheckpoint(ctx, db.App, name); err != nil || cp.Position != want {
			t.Errorf("%s: %+v, %v; want %+v", name, cp.Position, err, want)
		}
	}
}
