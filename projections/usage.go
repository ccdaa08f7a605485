package projections

import (
	"context"
	"encoding/json"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// UsageMeter meters what each VM holds over time (docs/EVENTS.md, "Usage"):
// from one VM event to the next it held one state (the VM's status), its
// size (cores, memory, disk), its snapshots and its pool IPv4 addresses;
// each such interval is added to usage_records, split at UTC hours. Only
// the events' recorded times are used, never the clock, so a rebuild
// gives the same records. A VM found stopped by hand on Proxmox
// (vm_drift_detected) is metered as stopped from the drift event on, since
// the domain's Apply makes it so. The interval still open (since the VM's
// last event) is added by the query, up to the time asked for.
type UsageMeter struct{}

var _ BatchApplier = UsageMeter{}

// Name implements Projector.
func (UsageMeter) Name() string { return "usage" }

// Tables implements Projector.
func (UsageMeter) Tables() []string { return []string{"usage_vms", "usage_records"} }

// EventTypes implements Projector: every VM event may change what is held.
func (UsageMeter) EventTypes() []string { return VMs{}.EventTypes() }

// meter is what a VM holds, as metered.
type meter struct {
	State                   string
	Cores, MemoryMB, DiskGB int
	IPv4, Snapshots         int
	Backups                 int
	BackupMB                int64
}

// meterOf is what v holds (raw: v as JSON, for its backups), and whether
// it holds anything: a VM deleted, or whose creation failed before Proxmox
// had it, holds nothing.
func meterOf(v *domain.VM, raw []byte) (meter, bool) {
	held := v.Exists() && v.Status != domain.VMDeleted && !(v.Status == domain.VMFailed && v.VMID == 0)
	m := meter{State: string(v.Status), Cores: v.Spec.Cores, MemoryMB: v.Spec.MemoryMB, DiskGB: v.Spec.DiskGB,
		IPv4: v.HeldIPv4(), Snapshots: len(v.Snapshots)}
	m.Backups, m.BackupMB = backupsStored(raw)
	return m, held || m.Backups > 0
}

// backupsStored counts the VM's backup archives that are stored (available,
// or being deleted) and their size in MiB, rounded up, from the aggregate's
// JSON: the backups' own members (status, size_bytes), so the meter needs
// no more of the backup domain than that. A VM's backups outlive the VM
// until deleted, so they keep being metered after it.
func backupsStored(raw []byte) (n int, mb int64) {
	var v struct {
		Backups []struct {
			Status    string `json:"status"`
			SizeBytes int64  `json:"size_bytes"`
		}
	}
	if json.Unmarshal(raw, &v) != nil {
		return 0, 0
	}
	for _, b := range v.Backups {
		if b.Status == "available" || b.Status == "deleting" {
			n++
			mb += (b.SizeBytes + 1<<20 - 1) >> 20
		}
	}
	return n, mb
}

// Apply implements Projector.
func (UsageMeter) Apply(ctx context.Context, tx pgx.Tx, e eventlog.Event) error {
	return applyUsageEvents(ctx, tx, e.TenantID, []eventlog.Event{e})
}

// ApplyBatch implements BatchApplier: a tenant's events of a batch read
// each VM's usage_vms row once and write the tables once (usage_batch.go).
// Rows are each one tenant's and read under its scope, as BatchApplier
// requires.
func (UsageMeter) ApplyBatch(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, evs []eventlog.Event) error {
	return applyUsageEvents(ctx, tx, tenant, evs)
}

// hourSlice is the part of an interval within one UTC hour.
type hourSlice struct {
	Hour time.Time
	Held time.Duration
}

// splitHours cuts [from, to) at UTC hour boundaries (nothing when to is
// not after from).
func splitHours(from, to time.Time) []hourSlice {
	var out []hourSlice
	from, to = from.UTC(), to.UTC()
	for from.Before(to) {
		hour := from.Truncate(time.Hour)
		end := earlier(hour.Add(time.Hour), to)
		out = append(out, hourSlice{Hour: hour, Held: end.Sub(from)})
		from = end
	}
	return out
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
