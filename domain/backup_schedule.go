package domain

import (
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/google/uuid"
)

// StreamBackupSchedule is a backup schedule's stream, in its tenant.
const StreamBackupSchedule = "backup_schedule"

// BackupScheduleConfig is what a tenant says about a schedule: which VMs
// (VMIDs, or All of the tenant's), when (a Proxmox calendar event), how
// (vzdump's mode) and what to keep (Retention).
type BackupScheduleConfig struct {
	Name      string      `json:"name"`
	VMIDs     []uuid.UUID `json:"vm_ids,omitempty"`
	All       bool        `json:"all,omitempty"`
	Calendar  string      `json:"calendar"`
	Mode      string      `json:"mode"`
	Retention Retention   `json:"retention"`
	Enabled   bool        `json:"enabled"`
}

// MaxScheduleVMs bounds a schedule's explicit VM list; MaxSchedulesPerTenant
// the schedules a tenant keeps (the one scheduler reads them all).
const (
	MaxScheduleVMs        = 500
	MaxSchedulesPerTenant = 50
)

var scheduleNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$`)

// Validate checks the configuration; the parsed calendar is returned.
func (c *BackupScheduleConfig) Validate() (*CalendarEvent, error) {
	f := fieldErrors{}
	if !scheduleNamePattern.MatchString(c.Name) {
		f.add("name", "1 to 63 letters, digits, spaces, ., _ or -, starting with a letter or digit")
	}
	if c.Mode == "" {
		c.Mode = BackupSnapshot
	}
	if c.Mode != BackupSnapshot && c.Mode != BackupSuspend && c.Mode != BackupStop {
		f.add("mode", `must be "snapshot", "suspend" or "stop"`)
	}
	switch {
	case c.All && len(c.VMIDs) > 0:
		f.add("vm_ids", "give vm_ids or all: true, not both")
	case !c.All && len(c.VMIDs) == 0:
		f.add("vm_ids", "give the VMs' ids, or all: true for every VM of the tenant")
	case len(c.VMIDs) > MaxScheduleVMs:
		f.add("vm_ids", fmt.Sprintf("at most %d", MaxScheduleVMs))
	}
	ids := slices.Clone(c.VMIDs)
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	c.VMIDs = slices.Compact(ids)
	cal, err := ParseCalendarEvent(c.Calendar)
	if err != nil {
		f.add("calendar", err.Error())
	}
	c.Retention.validate(f)
	if err := f.err(); err != nil {
		return nil, err
	}
	return cal, nil
}

type (
	BackupScheduleCreated struct {
		BackupScheduleConfig
		NextRunAt time.Time `json:"next_run_at"`
	}
	BackupScheduleUpdated struct {
		BackupScheduleConfig
		NextRunAt time.Time `json:"next_run_at"`
	}
	BackupScheduleDeleted struct{}
	// BackupScheduleRunStarted: the scheduler found the schedule due and
	// asks for a backup of each of VMIDs, each at Slot plus its share of
	// Jitter. A run missed while no scheduler ran is one run (the latest
	// slot), not one per slot.
	BackupScheduleRunStarted struct {
		Slot      time.Time     `json:"slot"`
		VMIDs     []uuid.UUID   `json:"vm_ids"`
		Jitter    time.Duration `json:"jitter_ns"`
		NextRunAt time.Time     `json:"next_run_at"`
	}
)

func (BackupScheduleCreated) EventType() string    { return "backup_schedule_created" }
func (BackupScheduleUpdated) EventType() string    { return "backup_schedule_updated" }
func (BackupScheduleDeleted) EventType() string    { return "backup_schedule_deleted" }
func (BackupScheduleRunStarted) EventType() string { return "backup_schedule_run_started" }

var backupScheduleEvents = []func() Event{
	func() Event { return &BackupScheduleCreated{} },
	func() Event { return &BackupScheduleUpdated{} },
	func() Event { return &BackupScheduleDeleted{} },
	func() Event { return &BackupScheduleRunStarted{} },
}

// BackupSchedule is a tenant's recurring backup job.
type BackupSchedule struct {
	ID        uuid.UUID
	Config    BackupScheduleConfig
	NextRunAt time.Time
	LastSlot  time.Time
	Deleted   bool
	Version   int64
}

// Apply mutates the schedule by one recorded event.
func (s *BackupSchedule) Apply(e Event, _ time.Time) {
	switch e := e.(type) {
	case *BackupScheduleCreated:
		s.Config, s.NextRunAt = e.BackupScheduleConfig, e.NextRunAt
	case *BackupScheduleUpdated:
		s.Config, s.NextRunAt = e.BackupScheduleConfig, e.NextRunAt
	case *BackupScheduleDeleted:
		s.Deleted = true
	case *BackupScheduleRunStarted:
		s.LastSlot, s.NextRunAt = e.Slot, e.NextRunAt
	}
	s.Version++
}

// Exists reports whether the schedule was created and not deleted.
func (s *BackupSchedule) Exists() bool { return s.Version > 0 && !s.Deleted }

// CreateBackupSchedule decides a new schedule at now.
func CreateBackupSchedule(c BackupScheduleConfig, now time.Time) ([]Event, error) {
	cal, err := c.Validate()
	if err != nil {
		return nil, err
	}
	return []Event{&BackupScheduleCreated{BackupScheduleConfig: c, NextRunAt: cal.Next(now)}}, nil
}

// Update replaces the schedule's configuration; the next run follows the
// new calendar.
func (s *BackupSchedule) Update(c BackupScheduleConfig, now time.Time) ([]Event, error) {
	if !s.Exists() {
		return nil, ErrNotFound
	}
	cal, err := c.Validate()
	if err != nil {
		return nil, err
	}
	return []Event{&BackupScheduleUpdated{BackupScheduleConfig: c, NextRunAt: cal.Next(now)}}, nil
}

// Delete removes the schedule; its backups stay.
func (s *BackupSchedule) Delete() ([]Event, error) {
	if !s.Exists() {
		return nil, ErrNotFound
	}
	return []Event{&BackupScheduleDeleted{}}, nil
}

// Run starts the run due at now over vms (for All, the tenant's VMs the
// caller found): nothing when the schedule is disabled, deleted or not
// due. Several slots missed count as one, the latest.
func (s *BackupSchedule) Run(now time.Time, vms []uuid.UUID, jitter time.Duration) []Event {
	if !s.Exists() || !s.Config.Enabled || s.NextRunAt.IsZero() || now.Before(s.NextRunAt) {
		return nil
	}
	cal, err := ParseCalendarEvent(s.Config.Calendar)
	if err != nil {
		return nil
	}
	slot := cal.Latest(s.NextRunAt, now)
	if slot.IsZero() {
		slot = s.NextRunAt
	}
	if !s.Config.All {
		vms = s.Config.VMIDs
	}
	return []Event{&BackupScheduleRunStarted{Slot: slot, VMIDs: slices.Clone(vms), Jitter: jitter, NextRunAt: cal.Next(now)}}
}

// scheduledBackupNamespace derives a scheduled backup's id.
var scheduledBackupNamespace = uuid.MustParse("5b0c3f0e-7d2a-4f55-9c1e-3a8b6d4e2f10")

// ScheduledBackupID is the id of the backup of vm a schedule's run at
// slot asks for: the same however often the scheduler asks.
func ScheduledBackupID(schedule uuid.UUID, slot time.Time, vm uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(scheduledBackupNamespace, []byte(schedule.String()+"|"+slot.UTC().Format(time.RFC3339)+"|"+vm.String()))
}

// JitterOffset is when, after its run's slot, vm's backup starts: spread
// evenly over the jitter window by a hash of schedule and VM, so a
// schedule over many VMs does not start every vzdump at once.
func JitterOffset(schedule, vm uuid.UUID, jitter time.Duration) time.Duration {
	if jitter <= 0 {
		return 0
	}
	h := uuid.NewSHA1(scheduledBackupNamespace, append(schedule[:], vm[:]...))
	n := uint64(0)
	for _, b := range h[:8] {
		n = n<<8 | uint64(b)
	}
	return time.Duration(n % uint64(jitter))
}
