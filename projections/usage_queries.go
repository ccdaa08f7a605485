package projections

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// UsageRecord is what one VM held in one state and size for Held within
// the period starting at PeriodStart.
type UsageRecord struct {
	VMID                    uuid.UUID
	PeriodStart             time.Time
	State                   string
	Cores, MemoryMB, DiskGB int
	IPv4, Snapshots         int
	Backups                 int
	BackupMB                int64
	Held                    time.Duration
}

// Seconds is Held in whole seconds, rounded.
func (u UsageRecord) Seconds() int64 { return int64(u.Held.Round(time.Second) / time.Second) }

type usageKey struct {
	vm     uuid.UUID
	period time.Time
	meter
}

// UsageReport is tenant's usage in [from, to) by hour or day (UTC),
// sorted by period, VM and state: the closed intervals the projector
// recorded, and each VM's open interval (since its last event) up to
// until (the earlier of to and now, which the caller passes so that a
// report of the past is the same whenever it is asked for).
func UsageReport(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID, from, to, until time.Time, day bool) ([]UsageRecord, error) {
	sums := map[usageKey]time.Duration{}
	period := func(t time.Time) time.Time {
		if day {
			return t.UTC().Truncate(24 * time.Hour)
		}
		return t.UTC().Truncate(time.Hour)
	}
	err := tenantdb.ReadTx(ctx, pool, tenantdb.Tenant(tenant), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT vm_id, period_start, state, cores, memory_mb, disk_gb, ipv4, snapshots, backups, backup_mb, held_us FROM usage_records
			WHERE tenant_id = $1 AND period_start >= $2 AND period_start < $3`, tenant, from, to)
		if err != nil {
			return err
		}
		var k usageKey
		var us int64
		if _, err := pgx.ForEachRow(rows, []any{&k.vm, &k.period, &k.State, &k.Cores, &k.MemoryMB, &k.DiskGB, &k.IPv4, &k.Snapshots, &k.Backups, &k.BackupMB, &us}, func() error {
			k.period = period(k.period)
			sums[k] += time.Duration(us) * time.Microsecond
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT vm_id, state, cores, memory_mb, disk_gb, ipv4, snapshots, backups, backup_mb, since FROM usage_vms
			WHERE tenant_id = $1 AND metered AND since < $2`, tenant, until)
		if err != nil {
			return err
		}
		var since time.Time
		_, err = pgx.ForEachRow(rows, []any{&k.vm, &k.State, &k.Cores, &k.MemoryMB, &k.DiskGB, &k.IPv4, &k.Snapshots, &k.Backups, &k.BackupMB, &since}, func() error {
			if since.Before(from) {
				since = from
			}
			for _, s := range splitHours(since, until) {
				k.period = period(s.Hour)
				sums[k] += s.Held
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]UsageRecord, 0, len(sums))
	for k, held := range sums {
		out = append(out, UsageRecord{VMID: k.vm, PeriodStart: k.period, State: k.State, Cores: k.Cores, MemoryMB: k.MemoryMB,
			DiskGB: k.DiskGB, IPv4: k.IPv4, Snapshots: k.Snapshots, Backups: k.Backups, BackupMB: k.BackupMB, Held: held})
	}
	slices.SortFunc(out, func(a, b UsageRecord) int {
		return cmp.Or(a.PeriodStart.Compare(b.PeriodStart), slices.Compare(a.VMID[:], b.VMID[:]), cmp.Compare(a.State, b.State),
			cmp.Compare(a.Cores, b.Cores), cmp.Compare(a.MemoryMB, b.MemoryMB), cmp.Compare(a.DiskGB, b.DiskGB),
			cmp.Compare(a.IPv4, b.IPv4), cmp.Compare(a.Snapshots, b.Snapshots), cmp.Compare(a.Backups, b.Backups), cmp.Compare(a.BackupMB, b.BackupMB))
	})
	return out, nil
}
