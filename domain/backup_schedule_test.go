package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/accountdb/accountdb/domain"
)

func TestBackupScheduleValidation(t *testing.T) {
	var ve *domain.ValidationError
	_, err := domain.CreateBackupSchedule(domain.BackupScheduleConfig{Name: "nightly", All: true, Calendar: "mon..fri 25:00"}, at("2026-12-03 12:00"))
	if !errors.As(err, &ve) || ve.Fields["calendar"] == "" {
		t.Fatalf("invalid calendar: %v", err)
	}
	_, err = domain.CreateBackupSchedule(domain.BackupScheduleConfig{Name: "x", Calendar: "daily", Mode: "hibernate",
		Retention: domain.Retention{KeepDaily: -1}}, at("2026-12-03 12:00"))
	if !errors.As(err, &ve) || ve.Fields["vm_ids"] == "" || ve.Fields["mode"] == "" || ve.Fields["retention.keep_daily"] == "" {
		t.Fatalf("bad fields: %v", err)
	}
}

// TestBackupScheduleRunsOncePerDueTime: a run when due, none before; a
// week missed is one run at the latest slot; a disabled schedule never
// runs; the backup ids of a run are stable and jitter stays in its window.
func TestBackupScheduleRunsOncePerDueTime(t *testing.T) {
	vm := uuid.New()
	s := &domain.BackupSchedule{ID: uuid.New()}
	evs, err := domain.CreateBackupSchedule(domain.BackupScheduleConfig{Name: "nightly", VMIDs: []uuid.UUID{vm}, Calendar: "daily",
		Retention: domain.Retention{KeepLast: 3}, Enabled: true}, at("2026-12-03 12:00"))
	if err != nil {
		t.Fatal(err)
	}
	s.Apply(evs[0], time.Time{})
	if !s.NextRunAt.Equal(at("2026-12-04 00:00")) {
		t.Fatalf("next run %s", s.NextRunAt)
	}
	if evs := s.Run(at("2026-12-03 23:59"), nil, 0); evs != nil {
		t.Fatalf("ran before it was due: %v", evs)
	}
	evs = s.Run(at("2026-12-11 09:00"), nil, time.Minute)
	run, ok := evs[0].(*domain.BackupScheduleRunStarted)
	if !ok || !run.Slot.Equal(at("2026-12-11 00:00")) || !run.NextRunAt.Equal(at("2026-12-12 00:00")) || len(run.VMIDs) != 1 {
		t.Fatalf("catch-up run %+v", evs)
	}
	s.Apply(run, time.Time{})
	if evs := s.Run(at("2026-12-11 09:01"), nil, 0); evs != nil {
		t.Fatalf("ran twice for one slot: %v", evs)
	}
	first, again := domain.ScheduledBackupID(s.ID, run.Slot, vm), domain.ScheduledBackupID(s.ID, run.Slot.In(time.FixedZone("x", 3600)), vm)
	if first != again || first == domain.ScheduledBackupID(s.ID, run.NextRunAt, vm) || first == domain.ScheduledBackupID(s.ID, run.Slot, uuid.New()) {
		t.Fatal("backup ids are not one per schedule, slot and VM")
	}
	for range 100 {
		if d := domain.JitterOffset(s.ID, uuid.New(), time.Minute); d < 0 || d >= time.Minute {
			t.Fatalf("offset %s outside the window", d)
		}
	}
	off := s.Config
	off.Enabled = false
	evs, _ = s.Update(off, at("2026-12-11 10:00"))
	s.Apply(evs[0], time.Time{})
	if evs := s.Run(at("2026-12-20 10:00"), nil, 0); evs != nil {
		t.Fatalf("a disabled schedule ran: %v", evs)
	}
}
