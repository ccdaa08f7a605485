package projections

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// vmLog is a log of several VMs' lives (vmLife, then guest addresses and a
// cloud-init change) in two tenants, interleaved: a batch of it holds
// several events of one VM, of several VMs, of both tenants.
func vmLog(base time.Time) []eventlog.Event {
	tenant, other := uuid.New(), uuid.New()
	var lives [][]eventlog.Event
	for i, t := range []uuid.UUID{tenant, tenant, other} {
		life := vmLife(t, uuid.New(), base.Add(time.Duration(i)*7*time.Minute))
		last := life[len(life)-1]
		for j, de := range []domain.Event{&domain.VMGuestAddressesReported{Addresses: []string{"10.0.0.5", "fd00::5"}},
			&domain.VMCloudInitUpdateRequested{Kind: domain.KindQEMU, CloudInit: domain.CloudInit{User: "ops", Hostname: "web"}},
			&domain.VMActionSucceeded{Action: domain.ActionConfigure, TaskID: "t9"}} {
			data, err := json.Marshal(de)
			if err != nil {
				panic(err)
			}
			e := last
			e.EventID, e.Type, e.Data = uuid.New(), de.EventType(), data
			e.StreamVersion += int64(j + 1)
			e.RecordedAt = last.RecordedAt.Add(time.Duration(j+1) * 3 * time.Minute)
			life = append(life, e)
		}
		lives = append(lives, life)
	}
	var out []eventlog.Event
	for i := 0; len(out) < len(lives[0])*len(lives); i++ {
		for _, l := range lives {
			if i < len(l) {
				out = append(out, l[i])
			}
		}
	}
	for i := range out {
		out[i].Position = eventlog.Position{TransactionID: uint64(i + 1), GlobalPosition: int64(i + 1)}
	}
	return out
}

// dumpRows is every row of the tables, as canonical jsonb text, sorted.
func dumpRows(t *testing.T, q rowQuerier, tables ...string) []string {
	t.Helper()
	var out []string
	for _, table := range tables {
		rows, err := q.Query(context.Background(), `SELECT to_jsonb(t)::text FROM `+pgx.Identifier{table}.Sanitize()+` t`)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got...)
	}
	slices.Sort(out)
	return out
}

// TestBatchAppliersEqualOneByOne: the vms and usage projectors apply a
// tenant's batch in memory (one read and one write per batch); whatever
// the batches (one event each through Apply, the whole log at once as a
// rebuild does, cuts of a few events as live batches are), the rows are the
// same, column for column.
func TestBatchAppliersEqualOneByOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	admin := db.AdminConn(t)
	log := vmLog(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	for _, p := range []BatchApplier{VMs{}, UsageMeter{}} {
		t.Run(p.Name(), func(t *testing.T) {
			reset := func() {
				t.Helper()
				for _, table := range p.Tables() {
					if _, err := admin.Exec(ctx, `TRUNCATE `+pgx.Identifier{table}.Sanitize()); err != nil {
						t.Fatal(err)
					}
				}
			}
			reset()
			for _, e := range log {
				if err := tenantdb.InTx(ctx, db.App, tenantdb.Tenant(e.TenantID), func(tx pgx.Tx) error {
					return p.Apply(ctx, tx, e)
				}); err != nil {
					t.Fatal(err)
				}
			}
			want := dumpRows(t, admin, p.Tables()...)
			if len(want) == 0 {
				t.Fatal("no rows")
			}
			for _, size := range []int{len(log), 4, 7} {
				reset()
				for from := 0; from < len(log); from += size {
					batch := log[from:min(from+size, len(log))]
					if err := pgx.BeginFunc(ctx, db.App, func(tx pgx.Tx) error {
						return applyReplayed(ctx, tx, p, reactsTo(p), batch)
					}); err != nil {
						t.Fatal(err)
					}
				}
				if got := dumpRows(t, admin, p.Tables()...); !slices.Equal(got, want) {
					t.Errorf("batches of %d:\n%v\none by one:\n%v", size, got, want)
				}
			}
		})
	}
}
