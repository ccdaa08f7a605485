package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

func state(v int64) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"at": %d}`, v)) }

// TestLatestSnapshotHonoursCoveredUntil: the latest snapshot is the one of
// the highest version whose covered instant is at or before the bound
// (inclusive); a zero bound takes any; saving one again changes nothing.
func TestLatestSnapshotHonoursCoveredUntil(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	tenant, st := uuid.New(), stream(t)
	t0 := time.Date(2026, 11, 23, 5, 0, 0, 0, time.UTC)
	t1, t2 := t0.Add(time.Second), t0.Add(2*time.Second)
	snaps := []eventstore.Snapshot{{StreamVersion: 500, CoveredUntil: t1, State: state(500)}, {StreamVersion: 1000, CoveredUntil: t2, State: state(1000)}}
	if err := s.SaveSnapshots(ctx, tenant, st, 1, snaps); err != nil {
		t.Fatal(err)
	}
	// Saved again, alongside a new one: the existing rows stay as they are.
	again := []eventstore.Snapshot{{StreamVersion: 500, CoveredUntil: t1, State: json.RawMessage(`{"other": true}`)},
		{StreamVersion: 1500, CoveredUntil: t2.Add(time.Second), State: state(1500)}}
	if err := s.SaveSnapshots(ctx, tenant, st, 1, again); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		until time.Time
		want  int64 // 0: none
	}{
		{time.Time{}, 1500},
		{t0, 0},
		{t1.Add(-time.Microsecond), 0},
		{t1, 500},
		{t2.Add(-time.Microsecond), 500},
		{t2, 1000},
		{t2.Add(time.Hour), 1500},
	} {
		got, found, err := s.LatestSnapshot(ctx, tenantdb.Tenant(tenant), st, 1, c.until)
		if err != nil {
			t.Fatal(err)
		}
		if found != (c.want != 0) || got.StreamVersion != c.want {
			t.Errorf("until %v: snapshot %d (found %v), want %d", c.until, got.StreamVersion, found, c.want)
			continue
		}
		if found {
			var v struct{ At int64 }
			if err := json.Unmarshal(got.State, &v); err != nil || v.At != c.want {
				t.Errorf("until %v: state %s", c.until, got.State)
			}
			if got.CoveredUntil.Location() != time.UTC || got.CoveredUntil.After(c.until) && !c.until.IsZero() {
				t.Errorf("until %v: covered until %v", c.until, got.CoveredUntil)
			}
		}
	}
	for _, bad := range []eventstore.Snapshot{{StreamVersion: 0, CoveredUntil: t1, State: state(0)},
		{StreamVersion: 1, State: state(1)}, {StreamVersion: 1, CoveredUntil: t1, State: json.RawMessage(`{`)}} {
		if err := s.SaveSnapshots(ctx, tenant, st, 1, []eventstore.Snapshot{bad}); !errors.Is(err, eventstore.ErrInvalidSnapshot) {
			t.Errorf("saved %+v: %v", bad, err)
		}
	}
}

// TestSnapshotsOfAnotherStateVersionAreIgnored: a snapshot is read back only
// by the same domain snapshot version and the same upcasters.
func TestSnapshotsOfAnotherStateVersionAreIgnored(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	tenant, st := uuid.New(), stream(t)
	at := time.Now()
	if err := s.SaveSnapshots(ctx, tenant, st, 1, []eventstore.Snapshot{{StreamVersion: 500, CoveredUntil: at, State: state(500)}}); err != nil {
		t.Fatal(err)
	}
	latest := func(s *eventstore.Store, code int) bool {
		t.Helper()
		_, found, err := s.LatestSnapshot(ctx, tenantdb.Tenant(tenant), st, code, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	if !latest(s, 1) || latest(s, 2) {
		t.Fatal("the domain's snapshot version does not select snapshots")
	}
	// An empty registry upcasts nothing, like none: same state version.
	if !latest(s.WithUpcasters(eventstore.NewUpcasters()), 1) {
		t.Fatal("an empty upcaster registry does not read a snapshot taken without one")
	}
	u := eventstore.NewUpcasters()
	if err := u.Register("vm_create_requested", 1, func(d json.RawMessage) (json.RawMessage, error) { return d, nil }); err != nil {
		t.Fatal(err)
	}
	if latest(s.WithUpcasters(u), 1) {
		t.Fatal("a store reading through other upcasters used the snapshot")
	}
	if a, b := s.SnapshotStateVersion(1), s.WithUpcasters(u).SnapshotStateVersion(1); a == b || a[:3] != "d1-" {
		t.Fatalf("state versions %q and %q", a, b)
	}
}

// TestSnapshotsAreTenantIsolated: row-level security keeps a tenant's
// snapshots from every other scope, and the service role can neither write
// another tenant's nor change or delete any.
func TestSnapshotsAreTenantIsolated(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	a, b, st := uuid.New(), uuid.New(), stream(t)
	if err := s.SaveSnapshots(ctx, a, st, 1, []eventstore.Snapshot{{StreamVersion: 500, CoveredUntil: time.Now(), State: state(500)}}); err != nil {
		t.Fatal(err)
	}
	for name, sc := range map[string]tenantdb.Scope{"another tenant": tenantdb.Tenant(b), "cross-tenant": tenantdb.System(),
		"platform admin": {PlatformAdmin: true}, "platform admin in another tenant": {TenantID: b, PlatformAdmin: true}} {
		if _, found, err := s.LatestSnapshot(ctx, sc, st, 1, time.Time{}); err != nil || found {
			t.Errorf("%s: found %v (%v)", name, found, err)
		}
	}
	if _, found, err := s.LatestSnapshot(ctx, tenantdb.Tenant(a), st, 1, time.Time{}); err != nil || !found {
		t.Fatalf("the owner: found %v (%v)", found, err)
	}
	write := func(sql string, args ...any) error {
		return tenantdb.InTx(ctx, db.App, tenantdb.Tenant(b), func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql, args...)
			return err
		})
	}
	if err := write(`INSERT INTO snapshots (tenant_id, stream_id, state_version, stream_version, covered_until, state)
		VALUES ($1, $2, $3, 1000, now(), '{}')`, a, st.String(), s.SnapshotStateVersion(1)); err == nil {
		t.Error("tenant b wrote a snapshot for tenant a")
	}
	if err := write(`UPDATE snapshots SET state = '{}'`); err == nil {
		t.Error("the service role may update snapshots")
	}
	if err := write(`DELETE FROM snapshots`); err == nil {
		t.Error("the service role may delete snapshots")
	}
}

// appendLate appends n events to st in a transaction that begins before
// during runs, so they are recorded (recorded_at is the transaction's start)
// before whatever during appends, and get the versions after it.
func appendLate(t *testing.T, s *eventstore.Store, tenant uuid.UUID, st eventstore.StreamID, n int, during func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := tenantdb.SetScope(ctx, tx, tenantdb.Tenant(tenant)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	during()
	evs := make([]eventstore.NewEvent, n)
	for i := range evs {
		evs[i] = eventstore.NewEvent{Type: "tick"}
	}
	if _, err := s.AppendTx(ctx, tx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.Any(), Events: evs}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestFoldStreamAfterAVersion: FoldStream starts after the version given
// and keeps the prefix semantics: with an event recorded later than its
// successor, a bound between the two ends the fold before the late one.
func TestFoldStreamAfterAVersion(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	tenant, st := uuid.New(), stream(t)
	tick := func(n int) {
		t.Helper()
		evs := make([]eventstore.NewEvent, n)
		for i := range evs {
			evs[i] = eventstore.NewEvent{Type: "tick"}
		}
		if _, err := s.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.Any(), Events: evs}); err != nil {
			t.Fatal(err)
		}
	}
	tick(4)                                             // 1..4
	appendLate(t, s, tenant, st, 2, func() { tick(2) }) // 5..6 at T, then 7..8 at T' < T
	tick(2)                                             // 9..10
	all, err := s.ReadStream(ctx, tenant, st, 1, 0)
	if err != nil || len(all) != 10 {
		t.Fatalf("%d events (%v)", len(all), err)
	}
	if !all[6].RecordedAt.Before(all[5].RecordedAt) {
		t.Fatalf("version 7 (%v) was not recorded before version 6 (%v)", all[6].RecordedAt, all[5].RecordedAt)
	}
	fold := func(after int64, until time.Time) []int64 {
		t.Helper()
		var got []int64
		if err := s.FoldStream(ctx, tenantdb.Tenant(tenant), st, after, until, func(e eventstore.Event) error {
			got = append(got, e.StreamVersion)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, c := range []struct {
		after int64
		until time.Time
		want  string
	}{
		{0, time.Time{}, "[1 2 3 4 5 6 7 8 9 10]"},
		{4, time.Time{}, "[5 6 7 8 9 10]"},
		{10, time.Time{}, "[]"},
		{2, all[3].RecordedAt, "[3 4]"},
		// Between 7's instant and 5's: 7 and 8 qualify, 5 does not: stop at 4.
		{2, all[6].RecordedAt, "[3 4]"},
		{4, all[6].RecordedAt, "[]"},
		{6, all[6].RecordedAt, "[7 8]"},
		{0, all[5].RecordedAt, "[1 2 3 4 5 6 7 8]"},
		{8, all[9].RecordedAt, "[9 10]"},
	} {
		if got := fmt.Sprint(fold(c.after, c.until)); got != c.want {
			t.Errorf("after %d until %v: %s, want %s", c.after, c.until, got, c.want)
		}
	}
}

// TestFoldFromSnapshotFallsBackWhenRestoreFails: a snapshot the caller
// cannot read is reported, and the fold then starts from the first event.
func TestFoldFromSnapshotFallsBackWhenRestoreFails(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	tenant, st := uuid.New(), stream(t)
	evs := make([]eventstore.NewEvent, 6)
	for i := range evs {
		evs[i] = eventstore.NewEvent{Type: "tick"}
	}
	if _, err := s.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(), Events: evs}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshots(ctx, tenant, st, 1, []eventstore.Snapshot{{StreamVersion: 4, CoveredUntil: time.Now(), State: state(4)}}); err != nil {
		t.Fatal(err)
	}
	for _, broken := range []bool{false, true} {
		var restored, first int64
		restoreErr := errors.New("unreadable")
		after, rerr, err := s.FoldFromSnapshot(ctx, tenantdb.Tenant(tenant), st, 1, time.Time{}, func(sn eventstore.Snapshot) error {
			if broken {
				return restoreErr
			}
			restored = sn.StreamVersion
			return nil
		}, func(e eventstore.Event) error {
			if first == 0 {
				first = e.StreamVersion
			}
			return nil
		})
		switch {
		case err != nil:
			t.Fatal(err)
		case !broken && (after != 4 || restored != 4 || first != 5 || rerr != nil):
			t.Fatalf("from the snapshot: after %d, restored %d, first event %d, %v", after, restored, first, rerr)
		case broken && (after != 0 || first != 1 || !errors.Is(rerr, restoreErr)):
			t.Fatalf("broken snapshot: after %d, first event %d, %v", after, first, rerr)
		}
	}
}
