package projections

import (
	"context"
	"encoding/json"
	"fmt"
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

// vmLife is one VM's events at chosen times: created, running, stopped,
// started, snapshotted, then stopped by hand on Proxmox (drift).
func vmLife(tenant, vm uuid.UUID, base time.Time) []eventlog.Event {
	at := func(d string) time.Time {
		off, err := time.ParseDuration(d)
		if err != nil {
			panic(err)
		}
		return base.Add(off)
	}
	steps := []struct {
		at string
		e  domain.Event
	}{
		{"30m", &domain.VMCreateRequested{Name: "web", Kind: domain.KindQEMU, Spec: domain.VMSpec{Cores: 2, MemoryMB: 2048, DiskGB: 20}, Template: "debian-12"}},
		{"31m", &domain.VMProvisioned{Node: "pve1", VMID: 100, TaskID: "t1"}},
		{"40m", &domain.VMActionRequested{Action: domain.ActionStop}},
		{"40m30s", &domain.VMActionSucceeded{Action: domain.ActionStop, TaskID: "t2"}},
		{"50m", &domain.VMActionRequested{Action: domain.ActionStart}},
		{"50m20s", &domain.VMActionSucceeded{Action: domain.ActionStart, TaskID: "t3"}},
		{"1h30m", &domain.VMSnapshotRequested{Name: "s1"}},
		{"1h30m10s", &domain.VMActionSucceeded{Action: domain.ActionSnapshot, TaskID: "t4", Snapshot: "s1"}},
		{"2h15m", &domain.VMDriftDetected{Expected: domain.VMRunning, Observed: domain.VMStopped}},
	}
	var out []eventlog.Event
	for i, s := range steps {
		data, err := json.Marshal(s.e)
		if err != nil {
			panic(err)
		}
		out = append(out, eventlog.Event{Position: eventlog.Position{TransactionID: uint64(i + 1), GlobalPosition: int64(i + 1)},
			EventID: uuid.New(), Stream: eventlog.StreamID{Type: domain.StreamVM, ID: vm}, StreamVersion: int64(i + 1),
			Type: s.e.EventType(), TenantID: tenant, Data: data, RecordedAt: at(s.at)})
	}
	return out
}

func applyUsage(t *testing.T, db *pgtest.DB, tenant uuid.UUID, batches ...[]eventlog.Event) {
	t.Helper()
	for _, evs := range batches {
		err := tenantdb.InTx(context.Background(), db.App, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
			for _, e := range evs {
				if err := (UsageMeter{}).Apply(context.Background(), tx, e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func report(t *testing.T, db *pgtest.DB, tenant uuid.UUID, from, to time.Time, day bool) []string {
	t.Helper()
	recs, err := UsageReport(context.Background(), db.App, tenant, from, to, to, day)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprintf("%s %s c%d m%d d%d s%d %ds", r.PeriodStart.Format("15:04"), r.State, r.Cores, r.MemoryMB, r.DiskGB, r.Snapshots, r.Seconds()))
	}
	return out
}

// TestUsageFromEventTimes: the seconds in each state come from the events'
// times alone, cut at hours; after the drift the VM counts as stopped; the
// same events applied again from scratch, all in one transaction as a
// rebuild does, give the same report to the second.
func TestUsageFromEventTimes(t *testing.T) {
	db := pgtest.New(t)
	tenant, other := uuid.New(), uuid.New()
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	life := vmLife(tenant, uuid.New(), base)
	var oneByOne [][]eventlog.Event
	for _, e := range life {
		oneByOne = append(oneByOne, []eventlog.Event{e})
	}
	applyUsage(t, db, tenant, oneByOne...)
	applyUsage(t, db, other, vmLife(other, uuid.New(), base)) // another tenant's VM, never in this report

	hourly := report(t, db, tenant, base, base.Add(3*time.Hour), false)
	want := []string{
		"10:00 provisioning c2 m2048 d20 s0 60s",
		"10:00 running c2 m2048 d20 s0 1120s",
		"10:00 starting c2 m2048 d20 s0 20s",
		"10:00 stopped c2 m2048 d20 s0 570s",
		"10:00 stopping c2 m2048 d20 s0 30s",
		"11:00 running c2 m2048 d20 s0 1810s",
		"11:00 running c2 m2048 d20 s1 1790s",
		"12:00 running c2 m2048 d20 s1 900s",
		"12:00 stopped c2 m2048 d20 s1 2700s",
	}
	if !slices.Equal(hourly, want) {
		t.Fatalf("hourly usage:\n%v\nwant\n%v", hourly, want)
	}
	daily := report(t, db, tenant, base.Truncate(24*time.Hour), base.Add(3*time.Hour), true)
	wantDaily := []string{
		"00:00 provisioning c2 m2048 d20 s0 60s",
		"00:00 running c2 m2048 d20 s0 2930s",
		"00:00 running c2 m2048 d20 s1 2690s",
		"00:00 starting c2 m2048 d20 s0 20s",
		"00:00 stopped c2 m2048 d20 s0 570s",
		"00:00 stopped c2 m2048 d20 s1 2700s",
		"00:00 stopping c2 m2048 d20 s0 30s",
	}
	if !slices.Equal(daily, wantDaily) {
		t.Fatalf("daily usage:\n%v\nwant\n%v", daily, wantDaily)
	}
	// A window in the middle counts only its part.
	if mid := report(t, db, tenant, base.Add(time.Hour), base.Add(2*time.Hour), false); len(mid) != 2 {
		t.Fatalf("11:00-12:00: %v", mid)
	}

	// Rebuilt: the tables emptied and every event applied in one batch.
	if _, err := db.AdminConn(t).Exec(context.Background(), `TRUNCATE usage_vms, usage_records`); err != nil {
		t.Fatal(err)
	}
	applyUsage(t, db, tenant, life)
	if again := report(t, db, tenant, base, base.Add(3*time.Hour), false); !slices.Equal(again, hourly) {
		t.Fatalf("after a rebuild:\n%v\nbefore\n%v", again, hourly)
	}
}

// TestBackupsStoredFromTheAggregate: archives available or being deleted
// count, in MiB rounded up each; creating, failed and deleted ones do not;
// an aggregate without backups holds none.
func TestBackupsStoredFromTheAggregate(t *testing.T) {
	raw := []byte(`{"Status":"deleted","Backups":[
		{"id":"a","status":"available","size_bytes":1048576},
		{"id":"b","status":"deleting","size_bytes":1048577},
		{"id":"c","status":"creating"},
		{"id":"d","status":"failed","size_bytes":5},
		{"id":"e","status":"deleted","size_bytes":99999999}]}`)
	if n, mb := backupsStored(raw); n != 2 || mb != 3 {
		t.Fatalf("stored %d backups of %d MiB, want 2 of 3", n, mb)
	}
	if n, mb := backupsStored([]byte(`{"Status":"running"}`)); n != 0 || mb != 0 {
		t.Fatalf("no backups: %d %d", n, mb)
	}
	// A deleted VM whose backups are kept is still metered, for them.
	v := &domain.VM{Status: domain.VMDeleted, Version: 3}
	if m, held := meterOf(v, raw); !held || m.Backups != 2 || m.State != "deleted" {
		t.Fatalf("deleted VM with backups: %+v held=%v", m, held)
	}
	if _, held := meterOf(v, []byte(`{}`)); held {
		t.Fatal("a deleted VM without backups is metered")
	}
}
