// Package backupsched runs tenants' backup schedules: one active scheduler
// per deployment (a session advisory lock, the projectors' Leases), which
// every Interval starts due runs as events (backup_schedule_run_started),
// asks for each VM's backup at its slot plus its share of the jitter
// window (vm_backup_requested with a backup id derived from schedule, slot
// and VM, so asking twice is one backup), and prunes each VM's backups of
// the schedule with Proxmox's semantics once the run's backup of that VM
// exists. A failed backup is never a reason to delete one: only a VM whose
// run's backup is available is pruned, and only available backups count.
package backupsched

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/leader"
	"github.com/accountdb/accountdb/projections"
)

// LeaseName is the scheduler's lock among the process's leases.
const LeaseName = "scheduler:backups"

// Defaults of Config.
const (
	DefaultInterval = 15 * time.Second
	DefaultJitter   = 5 * time.Minute
	// runOpenFor is how long after its slot a run's backups are still
	// asked for and pruned after (a VM busy at the slot gets its backup
	// when it is free, within this).
	runOpenFor = 24 * time.Hour
	// batch bounds the schedules one tick looks at.
	batch = 200
)

// Commands are the commands the scheduler issues (commands.Handler).
type Commands interface {
	RunBackupSchedule(ctx context.Context, tenant, id uuid.UUID, now time.Time, vms []uuid.UUID, jitter time.Duration) (*domain.BackupScheduleRunStarted, error)
	BackupVM(ctx context.Context, a commands.Actor, o commands.Options, tenant, vm uuid.UUID, nb commands.NewBackup) (commands.Result, uuid.UUID, error)
	DeleteBackup(ctx context.Context, a commands.Actor, o commands.Options, tenant, vm, backup uuid.UUID, reason string) (commands.Result, error)
}

// Lease is the election (projections.Leases).
type Lease interface {
	TryAcquire(ctx context.Context, name string) (bool, error)
	Check(ctx context.Context, name string) error
	Release(name string)
}

// Config configures a Scheduler; zero durations take the defaults.
type Config struct {
	Pool     *pgxpool.Pool
	Commands Commands
	Leases   Lease
	Log      *slog.Logger
	Interval time.Duration
	// Jitter is the window a run's backups start over.
	Jitter time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Scheduler is one process's candidate scheduler.
type Scheduler struct{ cfg Config }

// New returns a scheduler.
func New(cfg Config) *Scheduler {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Jitter < 0 {
		cfg.Jitter = 0
	} else if cfg.Jitter == 0 {
		cfg.Jitter = DefaultJitter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Scheduler{cfg: cfg}
}

// Run ticks until ctx ends, doing work only while it holds the lease.
func (s *Scheduler) Run(ctx context.Context) error {
	return leader.Every(ctx, s.cfg.Leases, LeaseName, s.cfg.Interval, s.cfg.Log, "backup scheduler", s.Tick)
}

// Tick does one round: due runs started, their backups asked for, pruned.
func (s *Scheduler) Tick(ctx context.Context) error {
	now := s.cfg.Now().UTC()
	list, err := projections.ActiveBackupSchedules(ctx, s.cfg.Pool, now, runOpenFor, batch)
	if err != nil {
		return err
	}
	for _, sc := range list {
		if err := s.cfg.Leases.Check(ctx, LeaseName); err != nil {
			return err
		}
		if err := s.schedule(ctx, sc, now); err != nil {
			s.cfg.Log.Warn("backup scheduler: schedule", "tenant_id", sc.TenantID, "schedule_id", sc.ID, "err", err)
		}
	}
	return nil
}

func (s *Scheduler) schedule(ctx context.Context, sc projections.BackupScheduleView, now time.Time) error {
	if sc.Config.Enabled && sc.NextRunAt != nil && !now.Before(*sc.NextRunAt) {
		var vms []uuid.UUID
		if sc.Config.All {
			var err error
			if vms, err = projections.ScheduledVMs(ctx, s.cfg.Pool, sc.TenantID); err != nil {
				return err
			}
		}
		run, err := s.cfg.Commands.RunBackupSchedule(ctx, sc.TenantID, sc.ID, now, vms, s.cfg.Jitter)
		if err != nil {
			return err
		}
		if run != nil {
			slot := run.Slot
			sc.LastRunAt, sc.RunVMIDs, sc.RunJitter = &slot, run.VMIDs, run.Jitter
			s.cfg.Log.Info("backup schedule run started", "tenant_id", sc.TenantID, "schedule_id", sc.ID, "slot", slot, "vms", len(run.VMIDs))
		}
	}
	if sc.LastRunAt == nil || now.Sub(*sc.LastRunAt) > runOpenFor {
		return nil
	}
	taken, err := projections.ScheduleBackups(ctx, s.cfg.Pool, sc.TenantID, sc.ID)
	if err != nil {
		return err
	}
	var errs []error
	for _, vm := range sc.RunVMIDs {
		errs = append(errs, s.vm(ctx, sc, vm, taken[vm], now))
	}
	return errors.Join(errs...)
}

// actor is who the scheduler's commands are recorded as: no user, the
// tenant's schedule.
func actor(tenant uuid.UUID) commands.Actor {
	a := commands.Actor{TenantID: tenant, CorrelationID: uuid.Must(uuid.NewV7())}
	a.Metadata.UserAgent = "accountdb-backup-scheduler"
	return a
}

// vm asks for the run's backup of vm once its start is due, and prunes
// after it once it is available.
// list is the VM's backups the schedule took, newest first.
func (s *Scheduler) vm(ctx context.Context, sc projections.BackupScheduleView, vm uuid.UUID, list []projections.BackupView, now time.Time) error {
	slot := *sc.LastRunAt
	id := domain.ScheduledBackupID(sc.ID, slot, vm)
	var this *projections.BackupView
	for i := range list {
		if list[i].ID == id {
			this = &list[i]
		}
	}
	switch {
	case this == nil:
		if now.Before(slot.Add(domain.JitterOffset(sc.ID, vm, sc.RunJitter))) {
			return nil
		}
		_, _, err := s.cfg.Commands.BackupVM(ctx, actor(sc.TenantID), commands.Options{}, sc.TenantID, vm,
			commands.NewBackup{Mode: sc.Config.Mode, ScheduleID: sc.ID, BackupID: id, Note: "schedule " + sc.Config.Name})
		if errors.Is(err, domain.ErrInvalidTransition) || errors.Is(err, domain.ErrNotFound) {
			return nil // busy (asked again next tick) or gone
		}
		return err
	case this.Status == string(domain.BackupAvailable):
		return s.prune(ctx, sc, vm, list)
	}
	// Creating, deleting, or failed: a failed backup prunes nothing.
	return nil
}

// prune deletes the VM's backups of the schedule its retention does not
// keep, one per tick (a VM has one action pending at a time).
func (s *Scheduler) prune(ctx context.Context, sc projections.BackupScheduleView, vm uuid.UUID, list []projections.BackupView) error {
	var items []domain.PruneItem
	status := map[uuid.UUID]string{}
	for _, b := range list {
		status[b.ID] = b.Status
		if b.Status == string(domain.BackupAvailable) {
			items = append(items, domain.PruneItem{ID: b.ID, Time: b.CreatedAt})
		}
	}
	_, remove := domain.Prune(items, sc.Config.Retention)
	for _, id := range remove {
		if status[id] != string(domain.BackupAvailable) {
			continue
		}
		_, err := s.cfg.Commands.DeleteBackup(ctx, actor(sc.TenantID), commands.Options{}, sc.TenantID, vm, id, "retention")
		if errors.Is(err, domain.ErrInvalidTransition) {
			return nil
		}
		return err
	}
	return nil
}
