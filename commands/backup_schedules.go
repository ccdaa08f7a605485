package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
)

func backupScheduleStream(id uuid.UUID) eventlog.StreamID {
	return eventlog.StreamID{Type: domain.StreamBackupSchedule, ID: id}
}

// ScheduleCount reads how many backup schedules a tenant keeps (the
// backup_schedules read model); the tables implement it when they can.
type ScheduleCount interface {
	BackupSchedules(ctx context.Context, tenant uuid.UUID) (int, error)
}

// LoadBackupSchedule rebuilds a tenant's schedule from its events.
func (h *Handler) LoadBackupSchedule(ctx context.Context, tenant, id uuid.UUID) (*domain.BackupSchedule, error) {
	s := &domain.BackupSchedule{ID: id}
	if _, err := h.loadInto(ctx, tenant, backupScheduleStream(id), s); err != nil {
		return nil, err
	}
	return s, nil
}

// checkScheduleVMs refuses VM ids that are not the tenant's VMs.
func (h *Handler) checkScheduleVMs(ctx context.Context, tenant uuid.UUID, c domain.BackupScheduleConfig) error {
	for _, id := range c.VMIDs {
		v, err := h.LoadVM(ctx, tenant, id)
		if err != nil {
			return err
		}
		if !v.Exists() || v.Status == domain.VMDeleted {
			return &domain.ValidationError{Fields: map[string]string{"vm_ids": "no VM " + id.String() + " of this tenant"}}
		}
	}
	return nil
}

// CreateBackupSchedule records a tenant's backup schedule.
func (h *Handler) CreateBackupSchedule(ctx context.Context, a Actor, o Options, tenant uuid.UUID, c domain.BackupScheduleConfig) (Result, error) {
	id := uuid.Must(uuid.NewV7())
	if o.IdempotencyKey != "" {
		id = commandID(a, "backup_schedule:"+o.IdempotencyKey)
	}
	if _, err := h.openTenant(ctx, tenant); err != nil {
		return Result{}, err
	}
	events, err := domain.CreateBackupSchedule(c, h.now())
	if err != nil {
		return Result{}, err
	}
	if n, ok := h.tables.(ScheduleCount); ok {
		count, err := n.BackupSchedules(ctx, tenant)
		if err != nil {
			return Result{}, err
		}
		if count >= domain.MaxSchedulesPerTenant {
			return Result{}, fmt.Errorf("%w: backup_schedules %d >= %d", domain.ErrQuotaExceeded, count, domain.MaxSchedulesPerTenant)
		}
	}
	if err := h.checkScheduleVMs(ctx, tenant, events[0].(*domain.BackupScheduleCreated).BackupScheduleConfig); err != nil {
		return Result{}, err
	}
	return h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		return change{tenant: tenant, stream: backupScheduleStream(id), events: events}, nil
	})
}

// UpdateBackupSchedule replaces a schedule's configuration with what
// change makes of the current one.
func (h *Handler) UpdateBackupSchedule(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID,
	edit func(*domain.BackupScheduleConfig)) (Result, error) {
	if _, err := h.openTenant(ctx, tenant); err != nil {
		return Result{}, err
	}
	return h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		s, err := h.LoadBackupSchedule(ctx, tenant, id)
		if err != nil {
			return change{}, err
		}
		c := s.Config
		c.VMIDs = append([]uuid.UUID(nil), c.VMIDs...)
		edit(&c)
		events, err := s.Update(c, h.now())
		if err != nil {
			return change{}, err
		}
		if err := h.checkScheduleVMs(ctx, tenant, events[0].(*domain.BackupScheduleUpdated).BackupScheduleConfig); err != nil {
			return change{}, err
		}
		return change{tenant: tenant, stream: backupScheduleStream(id), version: s.Version, events: events}, nil
	})
}

// DeleteBackupSchedule removes a schedule; the backups it took stay.
func (h *Handler) DeleteBackupSchedule(ctx context.Context, a Actor, o Options, tenant, id uuid.UUID) (Result, error) {
	return h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		s, err := h.LoadBackupSchedule(ctx, tenant, id)
		if err != nil {
			return change{}, err
		}
		events, err := s.Delete()
		if err != nil {
			return change{}, err
		}
		return change{tenant: tenant, stream: backupScheduleStream(id), version: s.Version, events: events}, nil
	})
}

// RunBackupSchedule starts the schedule's run due at now, if it is due
// (the scheduler's call; vms are the tenant's VMs for a schedule over all
// of them). It returns the run started, or nil.
func (h *Handler) RunBackupSchedule(ctx context.Context, tenant, id uuid.UUID, now time.Time, vms []uuid.UUID, jitter time.Duration) (*domain.BackupScheduleRunStarted, error) {
	var run *domain.BackupScheduleRunStarted
	_, err := h.execute(ctx, agentActor(uuid.Must(uuid.NewV7()), tenant), Options{}, func(ctx context.Context) (change, error) {
		s, err := h.LoadBackupSchedule(ctx, tenant, id)
		if err != nil {
			return change{}, err
		}
		events := s.Run(now, vms, jitter)
		run = nil
		if len(events) > 0 {
			run = events[0].(*domain.BackupScheduleRunStarted)
		}
		return change{tenant: tenant, stream: backupScheduleStream(id), version: s.Version, events: events}, nil
	})
	return run, err
}
