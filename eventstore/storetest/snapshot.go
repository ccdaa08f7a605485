package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
)

func state(v int64) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"at": %d}`, v)) }

// LatestSnapshotHonoursCoveredUntil: the latest snapshot is the one of
// the highest version whose covered instant is at or before the bound
// (inclusive); a zero bound takes any; saving one again changes nothing.
func LatestSnapshotHonoursCoveredUntil(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t)
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

// SnapshotsOfAnotherStateVersionAreIgnored: a snapshot is read back only
// by the same domain snapshot version and the same upcasters.
func SnapshotsOfAnotherStateVersionAreIgnored(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t)
	tenant, st := uuid.New(), stream(t)
	at := time.Now()
	if err := s.SaveSnapshots(ctx, tenant, st, 1, []eventstore.Snapshot{{StreamVersion: 500, CoveredUntil: at, State: state(500)}}); err != nil {
		t.Fatal(err)
	}
	latest := func(s Store, code int) bool {
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
	if !latest(h.WithUpcasters(s, eventstore.NewUpcasters()), 1) {
		t.Fatal("an empty upcaster registry does not read a snapshot taken without one")
	}
	u := eventstore.NewUpcasters()
	if err := u.Register("vm_create_requested", 1, func(d json.RawMessage) (json.RawMessage, error) { return d, nil }); err != nil {
		t.Fatal(err)
	}
	if latest(h.WithUpcasters(s, u), 1) {
		t.Fatal("a store reading through other upcasters used the snapshot")
	}
	if a, b := s.SnapshotStateVersion(1), h.WithUpcasters(s, u).SnapshotStateVersion(1); a == b || a[:3] != "d1-" {
		t.Fatalf("state versions %q and %q", a, b)
	}
}

// SnapshotsAreTenantIsolated: only the tenant's own scope sees its
// snapshots; not another tenant, not the cross-tenant or platform
// administrator scopes. (eventstore also checks what raw SQL may do.)
func SnapshotsAreTenantIsolated(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t)
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
}

// FoldStreamAfterAVersion: FoldStream starts after the version given
// and keeps the prefix semantics: with an event recorded later than its
// successor, a bound between the two ends the fold before the late one.
func FoldStreamAfterAVersion(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t)
	tenant, st := uuid.New(), stream(t)
	tick := func(n int) {
		t.Helper()
		if _, err := s.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.Any(), Events: ticks(n)}); err != nil {
			t.Fatal(err)
		}
	}
	tick(4)                                                      // 1..4
	h.AppendLate(t, s, tenant, st, ticks(2), func() { tick(2) }) // 5..6 at T, then 7..8 at T' < T
	tick(2)                                                      // 9..10
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
		if err := s.FoldStream(ctx, tenantdb.Tenant(tenant), st, after, until, func(e eventlog.Event) error {
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

// FoldFromSnapshotFallsBackWhenRestoreFails: a snapshot the caller
// cannot read is reported, and the fold then starts from the first event.
func FoldFromSnapshotFallsBackWhenRestoreFails(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t)
	tenant, st := uuid.New(), stream(t)
	if _, err := s.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(), Events: ticks(6)}); err != nil {
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
		}, func(e eventlog.Event) error {
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

// FoldFromSnapshotFoldsWhatFollowsIt: the fold restores the latest snapshot
// usable at the bound and hands over exactly the events after it, in order;
// a snapshot at the stream's end leaves nothing to fold, and without a
// usable snapshot the fold starts at version 1.
func FoldFromSnapshotFoldsWhatFollowsIt(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t)
	tenant, st := uuid.New(), stream(t)
	if _, err := s.Append(ctx, eventstore.Append{Stream: st, TenantID: tenant, Expected: eventstore.NoStream(), Events: ticks(6)}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.SaveSnapshots(ctx, tenant, st, 1, []eventstore.Snapshot{
		{StreamVersion: 2, CoveredUntil: now.Add(-time.Hour), State: state(2)},
		{StreamVersion: 6, CoveredUntil: now.Add(time.Hour), State: state(6)},
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		code     int
		until    time.Time
		restored int64 // 0: none
		folded   []int64
	}{
		{1, time.Time{}, 6, nil},
		{1, now, 2, []int64{3, 4, 5, 6}},
		{1, now.Add(-30 * time.Minute), 2, nil},
		{2, time.Time{}, 0, []int64{1, 2, 3, 4, 5, 6}},
	} {
		var restored int64
		var folded []int64
		after, rerr, err := s.FoldFromSnapshot(ctx, tenantdb.Tenant(tenant), st, c.code, c.until, func(sn eventstore.Snapshot) error {
			var v struct{ At int64 }
			if err := json.Unmarshal(sn.State, &v); err != nil || v.At != sn.StreamVersion {
				t.Errorf("snapshot %d: state %s", sn.StreamVersion, sn.State)
			}
			restored = sn.StreamVersion
			return nil
		}, func(e eventlog.Event) error {
			folded = append(folded, e.StreamVersion)
			return nil
		})
		if err != nil || rerr != nil {
			t.Fatal(err, rerr)
		}
		if after != c.restored || restored != c.restored || fmt.Sprint(folded) != fmt.Sprint(c.folded) {
			t.Errorf("code %d until %v: after %d, restored %d, folded %v; want %d, %v",
				c.code, c.until, after, restored, folded, c.restored, c.folded)
		}
	}
}
