package domain_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/accountdb/accountdb/domain"
)

// daily backups at 02:00 for n days ending on end, newest first.
func dailyBackups(end time.Time, n int) ([]domain.PruneItem, map[uuid.UUID]time.Time) {
	var items []domain.PruneItem
	when := map[uuid.UUID]time.Time{}
	for i := range n {
		t := end.AddDate(0, 0, -i)
		id := uuid.New()
		items = append(items, domain.PruneItem{ID: id, Time: t})
		when[id] = t
	}
	return items, when
}

func days(ids []uuid.UUID, when map[uuid.UUID]time.Time) []string {
	var out []string
	for _, id := range ids {
		out = append(out, when[id].Format("2006-01-02"))
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

// TestPruneRetentionExampleOfProxmoxDocs: the Proxmox VE guide's retention
// example for daily backups kept ten years, keep-last=3, keep-daily=13,
// keep-weekly=8, keep-monthly=11, keep-yearly=9: "at least two weeks" of
// dailies (3 + 13 days), then the newest backup (a Sunday) of each of the
// next 8 ISO weeks, then month ends, then year ends.
func TestPruneRetentionExampleOfProxmoxDocs(t *testing.T) {
	end := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC) // a Thursday
	items, when := dailyBackups(end, 11*365)
	keep, remove := domain.Prune(items, domain.Retention{KeepLast: 3, KeepDaily: 13, KeepWeekly: 8, KeepMonthly: 11, KeepYearly: 9})
	if len(keep) != 3+13+8+11+9 || len(keep)+len(remove) != len(items) {
		t.Fatalf("kept %d, removed %d of %d", len(keep), len(remove), len(items))
	}
	got := days(keep, when)
	for i := range 16 { // keep-last and keep-daily: the 16 newest days
		if want := end.AddDate(0, 0, -i).Format("2006-01-02"); got[i] != want {
			t.Fatalf("day %d kept %s, want %s", i, got[i], want)
		}
	}
	// 2026-11-18 is the 16th day back (a Wednesday, ISO week 47, which is
	// covered): weeklies are the Sundays of weeks 46 back to 39.
	wantWeekly := []string{"2026-11-15", "2026-11-08", "2026-11-01", "2026-10-25", "2026-10-18", "2026-10-11", "2026-10-04", "2026-09-27"}
	if !slices.Equal(got[16:24], wantWeekly) {
		t.Fatalf("weeklies %v, want %v", got[16:24], wantWeekly)
	}
	// September is covered by its weeklies: monthlies are the ends of
	// August back to October 2025.
	if got[24] != "2026-08-31" || got[34] != "2025-10-31" {
		t.Fatalf("monthlies %v", got[24:35])
	}
	// 2025 is covered: yearlies are the ends of 2024 back to 2016.
	if got[35] != "2024-12-31" || got[43] != "2016-12-31" {
		t.Fatalf("yearlies %v", got[35:])
	}
}

// TestPruneSemantics: the rules the Proxmox prune simulator documents.
func TestPruneSemantics(t *testing.T) {
	d := func(s string) time.Time { return at(s) }
	mk := func(times ...string) ([]domain.PruneItem, map[uuid.UUID]time.Time) {
		var items []domain.PruneItem
		when := map[uuid.UUID]time.Time{}
		for _, s := range times {
			id := uuid.New()
			items = append(items, domain.PruneItem{ID: id, Time: d(s)})
			when[id] = d(s)
		}
		return items, when
	}
	stamps := func(ids []uuid.UUID, when map[uuid.UUID]time.Time) []string {
		var out []string
		for _, id := range ids {
			out = append(out, when[id].Format("2006-01-02 15:04"))
		}
		return out
	}

	// "If there is more than one backup for a single day, only the latest
	// is kept"; "days without backups do not count".
	items, when := mk("2026-12-10 02:00", "2026-12-10 14:00", "2026-12-03 02:00", "2026-12-01 02:00")
	keep, remove := domain.Prune(items, domain.Retention{KeepDaily: 2})
	if got := stamps(keep, when); !slices.Equal(got, []string{"2026-12-10 14:00", "2026-12-03 02:00"}) {
		t.Fatalf("keep-daily=2 kept %v", got)
	}
	if got := stamps(remove, when); !slices.Equal(got, []string{"2026-12-10 02:00", "2026-12-01 02:00"}) {
		t.Fatalf("keep-daily=2 removed %v", got)
	}

	// "The next option does not take care of already covered backups":
	// keep-last=1 covers today, so keep-daily=1 keeps yesterday's.
	items, when = mk("2026-12-10 14:00", "2026-12-10 02:00", "2026-12-09 02:00", "2026-12-08 02:00")
	keep, _ = domain.Prune(items, domain.Retention{KeepLast: 1, KeepDaily: 1})
	if got := stamps(keep, when); !slices.Equal(got, []string{"2026-12-10 14:00", "2026-12-09 02:00"}) {
		t.Fatalf("keep-last=1 keep-daily=1 kept %v", got)
	}

	// Hourly: backups at 01:00, 02:00 and 12:00 with keep-hourly=4 are all
	// kept (three hours with backups).
	items, when = mk("2026-12-10 01:00", "2026-12-10 02:00", "2026-12-10 12:00")
	keep, remove = domain.Prune(items, domain.Retention{KeepHourly: 4})
	if len(keep) != 3 || len(remove) != 0 {
		t.Fatalf("keep-hourly=4 kept %v removed %v", stamps(keep, when), stamps(remove, when))
	}

	// Weeks are ISO weeks (Monday first), across a year's end: 2026-12-31
	// (Thursday) and 2027-01-03 (Sunday) are week 53 of 2026.
	items, when = mk("2027-01-03 02:00", "2026-12-31 02:00", "2026-12-27 02:00")
	keep, _ = domain.Prune(items, domain.Retention{KeepWeekly: 2})
	if got := stamps(keep, when); !slices.Equal(got, []string{"2027-01-03 02:00", "2026-12-27 02:00"}) {
		t.Fatalf("keep-weekly=2 kept %v", got)
	}

	// No option: keep-all.
	keep, remove = domain.Prune(items, domain.Retention{})
	if len(keep) != 3 || remove != nil {
		t.Fatalf("keep-all kept %d removed %d", len(keep), len(remove))
	}
}
