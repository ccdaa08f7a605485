package vm_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/backupsched"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/accountdb/accountdb/pvesim"
)

// testClock is the scheduler's clock, moved by the test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// heldLease stands for the election: the test's scheduler is the leader.
type heldLease struct{}

func (heldLease) TryAcquire(context.Context, string) (bool, error) { return true, nil }
func (heldLease) Check(context.Context, string) error              { return nil }
func (heldLease) Release(string)                                   {}

type scheduleItem struct {
	ID        string     `json:"id"`
	Calendar  string     `json:"calendar"`
	NextRunAt *time.Time `json:"next_run_at"`
	LastRunAt *time.Time `json:"last_run_at"`
}

// TestScheduledBackupsWithRetention drives a schedule "daily" with
// keep_last=2 through a scheduler whose clock and ticks the test moves
// (the core's own scheduler waits an hour between ticks): a run per day,
// retention after each successful backup, a backup failed on a full
// storage deletes nothing, a week missed is one run; an invalid calendar
// is a 400 naming the field.
func TestScheduledBackupsWithRetention(t *testing.T) {
	e := newRealEnv(t, stacktest.Options{BackupSchedules: backupsched.Config{Interval: time.Hour}}, pvesim.Options{})
	sys := commands.Actor{TenantID: domain.PlatformTenant, Roles: []string{auth.RolePlatformAdmin}}
	if _, err := e.s.Sys.Commands.SetClusterBackupStorage(context.Background(), sys, commands.Options{}, e.cluster, "backup-nfs"); err != nil {
		t.Fatal(err)
	}
	en := e.tenant(t, roomyQuota)
	a := en.create(t, "db-1")
	en.waitStatus(t, a.ID, "running")

	var p struct {
		Code   string
		Errors map[string]string
	}
	r := en.s.Do(t, en.token, http.MethodPost, "/v1/backup-schedules", map[string]any{"name": "nightly", "vm_ids": []string{a.ID},
		"calendar": "mon..fri 25:00"}, nil)
	if _ = json.Unmarshal(r.Body, &p); r.StatusCode != http.StatusBadRequest || !strings.Contains(p.Errors["calendar"], "hour") {
		t.Fatalf("invalid calendar: %d %s", r.StatusCode, r.Body)
	}
	r = en.s.Do(t, en.token, http.MethodPost, "/v1/backup-schedules", map[string]any{"name": "nightly", "vm_ids": []string{a.ID},
		"calendar": "daily", "retention": map[string]int{"keep_last": 2}}, nil)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("create schedule: %d %s", r.StatusCode, r.Body)
	}
	loc := r.Header.Get("Location")
	var sch scheduleItem
	stacktest.Eventually(t, 10*time.Second, "schedule listed", func() bool {
		return en.s.Do(t, en.token, http.MethodGet, loc, nil, &sch).StatusCode == http.StatusOK
	})
	if sch.NextRunAt == nil || sch.NextRunAt.Hour() != 0 || sch.NextRunAt.Minute() != 0 || sch.LastRunAt != nil {
		t.Fatalf("schedule %+v", sch)
	}
	day0 := *sch.NextRunAt

	clock := &testClock{}
	s := backupsched.New(backupsched.Config{Pool: e.s.Sys.Pool, Commands: e.s.Sys.Commands, Leases: heldLease{}, Now: clock.Now, Jitter: -1,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	tick := func() {
		t.Helper()
		if err := s.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	backups := func() (available, failed []backupItem) {
		var l struct{ Items []backupItem }
		en.s.Do(t, en.token, http.MethodGet, "/v1/vms/"+a.ID+"/backups", nil, &l)
		for _, b := range l.Items {
			switch b.Status {
			case "available":
				available = append(available, b)
			case "failed":
				failed = append(failed, b)
			}
		}
		return available, failed
	}
	// runDay moves the clock to a day's slot, ticks the run started and
	// waits for its backup to settle as want.
	seen := map[string]bool{}
	runDay := func(day int, want string) backupItem {
		t.Helper()
		clock.Set(day0.AddDate(0, 0, day).Add(time.Minute))
		tick()
		var got backupItem
		stacktest.Eventually(t, 20*time.Second, "the run's backup "+want, func() bool {
			var l struct{ Items []backupItem }
			en.s.Do(t, en.token, http.MethodGet, "/v1/vms/"+a.ID+"/backups", nil, &l)
			if len(l.Items) == 0 || seen[l.Items[0].ID] || l.Items[0].Status != want {
				return false
			}
			got = l.Items[0]
			return true
		})
		seen[got.ID] = true
		tick() // retention, when the backup is there
		return got
	}
	b1 := runDay(0, "available")
	b2 := runDay(1, "available")
	if avail, _ := backups(); len(avail) != 2 {
		t.Fatalf("after two runs: %+v", avail)
	}

	if err := e.sim.Simulator().FillStorage("backup-nfs", true); err != nil {
		t.Fatal(err)
	}
	b3 := runDay(2, "failed")
	if !strings.Contains(b3.Error, "No space left on device") {
		t.Fatalf("failed run: %+v", b3)
	}
	tick()
	tick()
	if avail, _ := backups(); len(avail) != 2 || avail[0].ID != b2.ID || avail[1].ID != b1.ID {
		t.Fatalf("a failed backup pruned something: %+v", avail)
	}
	for _, ev := range en.history(t, a.ID) {
		if ev.Type == "vm_backup_delete_requested" {
			t.Fatalf("a delete was requested after the failed backup: %s", ev.Data)
		}
	}
	if err := e.sim.Simulator().FillStorage("backup-nfs", false); err != nil {
		t.Fatal(err)
	}

	b4 := runDay(3, "available")
	stacktest.Eventually(t, 20*time.Second, "the oldest pruned", func() bool {
		avail, _ := backups()
		return len(avail) == 2 && avail[0].ID == b4.ID && avail[1].ID == b2.ID
	})
	if _, failed := backups(); len(failed) != 1 || failed[0].ID != b3.ID {
		t.Fatalf("the failed backup's record: %+v", failed)
	}
	if vols := e.sim.Simulator().BackupVolumes(); len(vols) != 2 || !slices.Contains(vols, b4.VolumeID) || !slices.Contains(vols, b2.VolumeID) {
		t.Fatalf("archives on pvesim: %v", vols)
	}
	var deleteReason string
	for _, ev := range en.history(t, a.ID) {
		if ev.Type == "vm_backup_delete_requested" {
			var d struct{ Reason string }
			_ = json.Unmarshal(ev.Data, &d)
			deleteReason = d.Reason
		}
	}
	if deleteReason != "retention" {
		t.Fatalf("the prune's delete says %q", deleteReason)
	}

	// A week with no scheduler: one run, at the latest slot.
	requests := func() int {
		n := 0
		for _, ev := range en.history(t, a.ID) {
			if ev.Type == "vm_backup_requested" {
				n++
			}
		}
		return n
	}
	before := requests()
	runDay(10, "available")
	tick()
	if got := requests(); got != before+1 {
		t.Fatalf("%d backups asked for after a week down, want 1", got-before)
	}
	stacktest.Eventually(t, 10*time.Second, "last run shown", func() bool {
		sch = scheduleItem{}
		en.s.Do(t, en.token, http.MethodGet, loc, nil, &sch)
		return sch.LastRunAt != nil && sch.LastRunAt.Equal(day0.AddDate(0, 0, 10))
	})
	if !sch.NextRunAt.Equal(day0.AddDate(0, 0, 11)) {
		t.Fatalf("next run %v", sch.NextRunAt)
	}

	other := e.tenant(t, roomyQuota)
	other.expect(t, http.MethodGet, loc, nil, http.StatusNotFound, "not_found")
	other.expect(t, http.MethodDelete, loc, nil, http.StatusNotFound, "not_found")
	en.do(t, http.MethodDelete, loc, nil)
}

// TestBackupSchedulesPerTenantAreCapped: a tenant keeps at most
// domain.MaxSchedulesPerTenant schedules (the one scheduler reads them
// all); one more is a 422 quota_exceeded.
func TestBackupSchedulesPerTenantAreCapped(t *testing.T) {
	e := newEnv(t, stacktest.Options{}, roomyQuota)
	for i := range domain.MaxSchedulesPerTenant {
		r := e.s.Do(t, e.token, http.MethodPost, "/v1/backup-schedules", map[string]any{"name": "s" + strconv.Itoa(i), "all": true,
			"calendar": "sat 03:00", "enabled": false}, nil)
		if r.StatusCode != http.StatusAccepted {
			t.Fatalf("schedule %d: %d %s", i, r.StatusCode, r.Body)
		}
	}
	stacktest.Eventually(t, 10*time.Second, "every schedule listed", func() bool {
		var l struct{ Items []scheduleItem }
		e.s.Do(t, e.token, http.MethodGet, "/v1/backup-schedules?limit=200", nil, &l)
		return len(l.Items) == domain.MaxSchedulesPerTenant
	})
	r := e.s.Do(t, e.token, http.MethodPost, "/v1/backup-schedules", map[string]any{"name": "one-more", "all": true, "calendar": "daily"}, nil)
	var p struct{ Code string }
	if _ = json.Unmarshal(r.Body, &p); r.StatusCode != http.StatusUnprocessableEntity || p.Code != "quota_exceeded" {
		t.Fatalf("one schedule too many: %d %s", r.StatusCode, r.Body)
	}
}
