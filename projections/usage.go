package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
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

var _ Projector = UsageMeter{}

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
	if e.Stream.Type != domain.StreamVM {
		return nil
	}
	de, err := domain.DecodeEvent(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	v := &domain.VM{ID: e.Stream.ID, TenantID: e.TenantID}
	var raw []byte
	var since time.Time
	var metered bool
	err = tx.QueryRow(ctx, `SELECT aggregate, since, metered FROM usage_vms WHERE tenant_id = $1 AND vm_id = $2`, e.TenantID, e.Stream.ID).
		Scan(&raw, &since, &metered)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("usage: vm %s: %w", e.Stream.ID, err)
		}
		if before, held := meterOf(v, raw); held && metered {
			if err := addInterval(ctx, tx, e, before, since, e.RecordedAt); err != nil {
				return err
			}
		}
	}
	v.Apply(de, e.RecordedAt)
	v.Version = e.StreamVersion
	if raw, err = json.Marshal(v); err != nil {
		return err
	}
	m, held := meterOf(v, raw)
	_, err = tx.Exec(ctx, `INSERT INTO usage_vms (tenant_id, vm_id, aggregate, state, cores, memory_mb, disk_gb, ipv4, snapshots,
			backups, backup_mb, since, metered)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (tenant_id, vm_id) DO UPDATE SET aggregate = EXCLUDED.aggregate, state = EXCLUDED.state, cores = EXCLUDED.cores,
			memory_mb = EXCLUDED.memory_mb, disk_gb = EXCLUDED.disk_gb, ipv4 = EXCLUDED.ipv4, snapshots = EXCLUDED.snapshots,
			backups = EXCLUDED.backups, backup_mb = EXCLUDED.backup_mb, since = EXCLUDED.since, metered = EXCLUDED.metered`,
		e.TenantID, e.Stream.ID, raw, m.State, m.Cores, m.MemoryMB, m.DiskGB, m.IPv4, m.Snapshots, m.Backups, m.BackupMB, e.RecordedAt, held)
	return err
}

// addInterval adds [from, to) held at m to usage_records, hour by hour.
func addInterval(ctx context.Context, tx pgx.Tx, e eventlog.Event, m meter, from, to time.Time) error {
	for _, s := range splitHours(from, to) {
		if _, err := tx.Exec(ctx, `INSERT INTO usage_records (tenant_id, vm_id, period_start, state, cores, memory_mb, disk_gb, ipv4, snapshots,
				backups, backup_mb, held_us)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (tenant_id, period_start, vm_id, state, cores, memory_mb, disk_gb, ipv4, snapshots, backups, backup_mb)
			DO UPDATE SET held_us = usage_records.held_us + EXCLUDED.held_us`,
			e.TenantID, e.Stream.ID, s.Hour, m.State, m.Cores, m.MemoryMB, m.DiskGB, m.IPv4, m.Snapshots, m.Backups, m.BackupMB,
			s.Held.Microseconds()); err != nil {
			return err
		}
	}
	return nil
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
