package commands_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/eventstore/memstore"
	"github.com/accountdb/accountdb/internal/domaintest"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
)

// fixture is a command handler on an event store in memory: loads and
// replays need nothing else (eventstore/storetest holds the store to what
// PostgreSQL's does).
type fixture struct {
	store *memstore.Store
	clock *memstore.Clock
	h     *commands.Handler
	log   *bytes.Buffer
}

var _ commands.EventStore = (*memstore.Store)(nil)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	c := &memstore.Clock{}
	store := memstore.New(memstore.WithClock(c.Now))
	var log bytes.Buffer
	h := commands.New(store, nil, auth.DefaultPasswordHasher(), commands.SessionConfig{}).
		WithLogger(slog.New(slog.NewTextHandler(&log, nil)))
	return &fixture{store: store, clock: c, h: h, log: &log}
}

// appendEvents appends events to stream in one append.
func (f *fixture) appendEvents(t *testing.T, tenant uuid.UUID, stream eventlog.StreamID, events []domain.Event) {
	t.Helper()
	a := eventstore.Append{Stream: stream, TenantID: tenant, Expected: eventstore.Any()}
	for _, e := range events {
		a.Events = append(a.Events, eventstore.NewEvent{Type: e.EventType(), Data: e})
	}
	if _, err := f.store.Append(context.Background(), a); err != nil {
		t.Fatal(err)
	}
}

// appendLate appends late as a PostgreSQL transaction that begins before
// during runs and commits after it would: its events get the versions after
// during's but are recorded (recorded_at is the transaction's start) before
// them.
func (f *fixture) appendLate(t *testing.T, tenant uuid.UUID, stream eventlog.StreamID, late []domain.Event, during func()) {
	t.Helper()
	began := time.Now()
	time.Sleep(time.Millisecond)
	during()
	f.clock.Pin(began)
	defer f.clock.Pin(time.Time{})
	f.appendEvents(t, tenant, stream, late)
}

// seed appends events in appends of random size, two of them recorded
// before the append preceding them: versions 501.. before 498..500 (the
// first snapshot's own events are the late ones), and 1000.. before 990..999
// (the snapshot's version is recorded before the events under it).
func (f *fixture) seed(t *testing.T, r *rand.Rand, tenant uuid.UUID, stream eventlog.StreamID, events []domain.Event) []eventlog.Event {
	t.Helper()
	v := 0
	for v < len(events) {
		switch {
		case v == 497 && len(events) >= 520:
			f.appendLate(t, tenant, stream, events[500:520], func() { f.appendEvents(t, tenant, stream, events[497:500]) })
			v = 520
		case v == 989 && len(events) >= 1010:
			f.appendLate(t, tenant, stream, events[999:1010], func() { f.appendEvents(t, tenant, stream, events[989:999]) })
			v = 1010
		default:
			next := len(events)
			for _, b := range []int{497, 989} {
				if v < b {
					next = min(next, b)
					break
				}
			}
			k := min(1+r.IntN(60), next-v)
			f.appendEvents(t, tenant, stream, events[v:v+k])
			v += k
		}
	}
	var all []eventlog.Event
	for {
		page, err := f.store.ReadStream(context.Background(), tenant, stream, int64(len(all)+1), eventstore.MaxReadLimit)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < eventstore.MaxReadLimit {
			break
		}
	}
	if len(all) != len(events) {
		t.Fatalf("seeded %d events, read %d", len(events), len(all))
	}
	return all
}

// reference replays, without the code under test, the prefix of events
// recorded at or before until (zero: all) into agg.
func reference(t *testing.T, events []eventlog.Event, until time.Time, agg domain.Aggregate) {
	t.Helper()
	for _, e := range events {
		if !until.IsZero() && e.RecordedAt.After(until) {
			return
		}
		de, err := domain.DecodeEvent(e.Type, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		agg.Apply(de, e.RecordedAt)
	}
}

// instants are where as_of answers can differ: before the first event, each
// instant an event was recorded at and a microsecond either side, each
// snapshot's covered instant and just before it, the far future.
func instants(r *rand.Rand, events []eventlog.Event, sample int) []time.Time {
	var out []time.Time
	for _, e := range events {
		out = append(out, e.RecordedAt.Add(-time.Microsecond), e.RecordedAt, e.RecordedAt.Add(time.Microsecond))
	}
	slices.SortFunc(out, time.Time.Compare)
	out = slices.Compact(out)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	out = out[:min(sample, len(out))]
	var covered time.Time
	for _, e := range events {
		if e.RecordedAt.After(covered) {
			covered = e.RecordedAt
		}
		if e.StreamVersion%commands.SnapshotEvery == 0 {
			out = append(out, covered, covered.Add(-time.Microsecond), e.RecordedAt, e.RecordedAt.Add(-time.Microsecond))
		}
	}
	return append(out, events[0].RecordedAt.Add(-time.Second), time.Now().Add(time.Hour))
}

// kind is one aggregate type under test.
type kind struct {
	name   string
	stream string
	events func(*rand.Rand, int) []domain.Event
	fresh  func(tenant, id uuid.UUID) domain.Aggregate
	load   func(h *commands.Handler, ctx context.Context, tenant, id uuid.UUID) (domain.Aggregate, error)
	asOf   func(h *commands.Handler, ctx context.Context, tenant, id uuid.UUID, at time.Time) (domain.Aggregate, error)
}

var kinds = []kind{
	{"vm", domain.StreamVM, domaintest.VMEvents,
		func(tenant, id uuid.UUID) domain.Aggregate { return &domain.VM{ID: id, TenantID: tenant} },
		func(h *commands.Handler, ctx context.Context, tenant, id uuid.UUID) (domain.Aggregate, error) {
			return h.LoadVM(ctx, tenant, id)
		},
		func(h *commands.Handler, ctx context.Context, tenant, id uuid.UUID, at time.Time) (domain.Aggregate, error) {
			return h.LoadVMAsOf(ctx, tenant, id, at)
		}},
	{"user", domain.StreamUser, domaintest.UserEvents,
		func(tenant, id uuid.UUID) domain.Aggregate { return &domain.User{ID: id, TenantID: tenant} },
		func(h *commands.Handler, ctx context.Context, tenant, id uuid.UUID) (domain.Aggregate, error) {
			return h.LoadUser(ctx, tenant, id)
		},
		func(h *commands.Handler, ctx context.Context, tenant, id uuid.UUID, at time.Time) (domain.Aggregate, error) {
			return h.LoadUserAsOf(ctx, tenant, id, at)
		}},
	{"tenant", domain.StreamTenant, domaintest.TenantEvents,
		func(_, id uuid.UUID) domain.Aggregate { return &domain.Tenant{ID: id} },
		func(h *commands.Handler, ctx context.Context, _, id uuid.UUID) (domain.Aggregate, error) {
			return h.LoadTenant(ctx, id)
		},
		func(h *commands.Handler, ctx context.Context, _, id uuid.UUID, at time.Time) (domain.Aggregate, error) {
			return h.LoadTenantAsOf(ctx, id, at)
		}},
}

// snapshotVersions lists the versions of stream's usable snapshots, as the
// stream's tenant sees them.
func (f *fixture) snapshotVersions(t *testing.T, tenant uuid.UUID, stream eventlog.StreamID) []int64 {
	t.Helper()
	var vs []int64
	until := time.Time{}
	for {
		s, found, err := f.store.LatestSnapshot(context.Background(), tenantdb.Tenant(tenant), stream, domain.SnapshotVersion, until)
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			slices.Reverse(vs)
			return vs
		}
		if len(vs) > 0 && vs[len(vs)-1] == s.StreamVersion {
			t.Fatalf("snapshot %d: covered instants do not grow with versions", s.StreamVersion)
		}
		vs = append(vs, s.StreamVersion)
		until = s.CoveredUntil.Add(-time.Microsecond)
	}
}

func (f *fixture) dropSnapshots(*testing.T) { f.store.DropSnapshots() }

// refusingSaves is a store whose snapshot saves fail, as when the database
// refuses them.
type refusingSaves struct{ *memstore.Store }

func (refusingSaves) SaveSnapshots(context.Context, uuid.UUID, eventlog.StreamID, int, []eventstore.Snapshot) error {
	return errors.New("permission denied for table snapshots")
}

// TestReplayFromSnapshotsEqualsFullReplay: for random-ish streams of each
// aggregate, longer than two SnapshotEvery and with events recorded later
// than their successors around both snapshots, command loads and as_of at
// instants before, between and after snapshots give exactly (DeepEqual)
// what replaying every event gives: with no snapshot yet (the call takes
// them), with the ones the call itself just took, and with all of them.
func TestReplayFromSnapshotsEqualsFullReplay(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for i, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(i), 42))
			tenant, id := uuid.New(), uuid.New()
			if k.stream == domain.StreamTenant {
				tenant = id
			}
			stream := eventlog.StreamID{Type: k.stream, ID: id}
			events := f.seed(t, r, tenant, stream, k.events(r, 1234))
			if !events[500].RecordedAt.Before(events[499].RecordedAt) || !events[999].RecordedAt.Before(events[998].RecordedAt) {
				t.Fatal("the seeded stream has no late events around its snapshots")
			}

			full := k.fresh(tenant, id)
			reference(t, events, time.Time{}, full)
			check := func(what string, got domain.Aggregate, err error, want domain.Aggregate) {
				t.Helper()
				if !want.Exists() {
					if !errors.Is(err, domain.ErrNotFound) {
						t.Fatalf("%s: %v, want not found", what, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s:\n got %#v\nwant %#v", what, got, want)
				}
			}
			// Command loads: cold (they take the snapshots), then warm.
			for _, what := range []string{"load, no snapshot", "load from snapshot"} {
				got, err := k.load(f.h, ctx, tenant, id)
				check(what, got, err, full)
				if vs := f.snapshotVersions(t, tenant, stream); !slices.Equal(vs, []int64{500, 1000}) {
					t.Fatalf("%s: snapshots at %v, want [500 1000]", what, vs)
				}
			}
			at := instants(r, events, 40)
			for _, cold := range []bool{true, false} {
				for _, until := range at {
					if cold {
						f.dropSnapshots(t)
					}
					want := k.fresh(tenant, id)
					reference(t, events, until, want)
					for _, what := range []string{"as_of", "as_of again"} {
						got, err := k.asOf(f.h, ctx, tenant, id, until)
						check(what+" "+until.Format(time.RFC3339Nano)+map[bool]string{true: " (from no snapshot)"}[cold], got, err, want)
					}
				}
			}
			if f.log.Len() > 0 {
				t.Fatalf("warnings: %s", f.log)
			}
		})
	}
}

// TestLoadsStartFromTheLatestSnapshot is a test of the mechanism, not of
// correctness: a planted snapshot whose state no event could produce (a name
// the VM never had) shows up in command loads and in as_of from its covered
// instant on, and not before; one of another state version, a full replay
// (the timeline of `accountdb replay`) and another tenant never see it.
func TestLoadsStartFromTheLatestSnapshot(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tenant, id := uuid.New(), uuid.New()
	stream := eventlog.StreamID{Type: domain.StreamVM, ID: id}
	f.appendEvents(t, tenant, stream, []domain.Event{&domain.VMCreateRequested{Name: "real", Kind: domain.KindQEMU, Template: "debian-12"}})
	f.appendEvents(t, tenant, stream, []domain.Event{&domain.VMProvisioned{Node: "pve1", VMID: 101}})
	f.appendEvents(t, tenant, stream, []domain.Event{&domain.VMActionRequested{Action: domain.ActionStop}})
	events, err := f.store.ReadStream(ctx, tenant, stream, 1, 0)
	if err != nil || len(events) != 3 {
		t.Fatalf("%d events (%v)", len(events), err)
	}

	planted := &domain.VM{ID: id, TenantID: tenant}
	reference(t, events[:2], time.Time{}, planted)
	planted.Name = "planted"
	plant := func(code int, version int64, vm *domain.VM) {
		t.Helper()
		state, err := json.Marshal(vm)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.store.SaveSnapshots(ctx, tenant, stream, code, []eventstore.Snapshot{
			{StreamVersion: version, CoveredUntil: events[version-1].RecordedAt, State: state}}); err != nil {
			t.Fatal(err)
		}
	}
	plant(domain.SnapshotVersion, 2, planted)
	other := *planted
	other.Name, other.Version = "other-state-version", 3
	plant(domain.SnapshotVersion+1, 3, &other)

	v, err := f.h.LoadVM(ctx, tenant, id)
	if err != nil || v.Name != "planted" || v.Version != 3 || v.Status != domain.VMStopping {
		t.Fatalf("load: %+v (%v), want the planted name with the third event applied", v, err)
	}
	v, err = f.h.LoadVMAsOf(ctx, tenant, id, events[1].RecordedAt)
	if err != nil || v.Name != "planted" || v.Version != 2 {
		t.Fatalf("as_of the snapshot's instant: %+v (%v)", v, err)
	}
	v, err = f.h.LoadVMAsOf(ctx, tenant, id, events[1].RecordedAt.Add(-time.Microsecond))
	if err != nil || v.Name != "real" || v.Version != 1 {
		t.Fatalf("as_of before the snapshot's instant: %+v (%v)", v, err)
	}
	// The timeline replays every event, whatever snapshots exist.
	full := &domain.VM{ID: id, TenantID: tenant}
	var seen int
	n, err := commands.ReplayUntil(ctx, f.store, tenantdb.Tenant(tenant), stream, time.Time{}, full, func(eventlog.Event, domain.Event) { seen++ })
	if err != nil || n != 3 || seen != 3 || full.Name != "real" {
		t.Fatalf("replay with a timeline: version %d, %d events seen, name %q (%v)", n, seen, full.Name, err)
	}
	// Another tenant sees neither the VM nor its snapshots.
	stranger := uuid.New()
	if v, err := f.h.LoadVM(ctx, stranger, id); err != nil || v.Exists() || v.Name != "" {
		t.Fatalf("another tenant's load: %+v (%v)", v, err)
	}
	if _, err := f.h.LoadVMAsOf(ctx, stranger, id, time.Now()); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("another tenant's as_of: %v", err)
	}
}

// TestSnapshotProblemsNeverFailALoad: a snapshot that does not decode is
// skipped (logged) and the stream replayed from its start; a save the
// store refuses is logged, and the load still answers.
func TestSnapshotProblemsNeverFailALoad(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tenant, id := uuid.New(), uuid.New()
	stream := eventlog.StreamID{Type: domain.StreamVM, ID: id}
	r := rand.New(rand.NewPCG(3, 3))
	events := f.seed(t, r, tenant, stream, domaintest.VMEvents(r, 2*commands.SnapshotEvery+7))
	want := &domain.VM{ID: id, TenantID: tenant}
	reference(t, events, time.Time{}, want)

	if err := f.store.SaveSnapshots(ctx, tenant, stream, domain.SnapshotVersion, []eventstore.Snapshot{
		{StreamVersion: 700, CoveredUntil: events[699].RecordedAt, State: []byte(`{"Version": "seven hundred"}`)}}); err != nil {
		t.Fatal(err)
	}
	h := commands.New(refusingSaves{f.store}, nil, auth.DefaultPasswordHasher(), commands.SessionConfig{}).
		WithLogger(slog.New(slog.NewTextHandler(f.log, nil)))

	got, err := h.LoadVM(ctx, tenant, id)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("load: %v\n got %#v\nwant %#v", err, got, want)
	}
	for _, logged := range []string{"snapshot not used", "snapshots not saved"} {
		if !bytes.Contains(f.log.Bytes(), []byte(logged)) {
			t.Errorf("not logged: %q in %s", logged, f.log)
		}
	}
	if vs := f.snapshotVersions(t, tenant, stream); !slices.Equal(vs, []int64{700}) {
		t.Fatalf("snapshots %v, want only the planted one", vs)
	}
}
