package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// usageVM is a usage_vms row in memory. As with vmRow, each event starts
// from exactly what the row holds (the aggregate as stored JSON, the start
// of the open interval at the database's microsecond precision), so a batch
// applied in memory leaves the rows a statement per event would.
type usageVM struct {
	found, dirty bool
	raw          []byte
	since        time.Time
	metered      bool
	m            meter
}

// recordKey is usage_records' primary key within a tenant.
type recordKey struct {
	vm   uuid.UUID
	hour int64 // Unix seconds of period_start
	m    meter
}

// usageBatch is what a batch adds to the usage tables of one tenant.
type usageBatch struct {
	vms     map[uuid.UUID]*usageVM
	order   []uuid.UUID
	held    map[recordKey]int64 // µs added to each usage_records row
	heldOrd []recordKey
}

// apply meters one event: the interval since the VM's previous event is
// added at what it held then, and the VM now holds what the event leaves.
func (b *usageBatch) apply(e eventlog.Event) error {
	de, err := domain.DecodeEvent(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	u := b.vms[e.Stream.ID]
	v := &domain.VM{ID: e.Stream.ID, TenantID: e.TenantID}
	if u.found {
		if err := json.Unmarshal(u.raw, v); err != nil {
			return fmt.Errorf("usage: vm %s: %w", e.Stream.ID, err)
		}
		if before, held := meterOf(v, u.raw); held && u.metered {
			for _, s := range splitHours(u.since, e.RecordedAt) {
				k := recordKey{vm: e.Stream.ID, hour: s.Hour.Unix(), m: before}
				if _, ok := b.held[k]; !ok {
					b.heldOrd = append(b.heldOrd, k)
				}
				b.held[k] += s.Held.Microseconds()
			}
		}
	}
	v.Apply(de, e.RecordedAt)
	v.Version = e.StreamVersion
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	u.m, u.metered = meterOf(v, raw)
	u.found, u.dirty, u.raw, u.since = true, true, raw, e.RecordedAt.Truncate(time.Microsecond)
	return nil
}

// applyUsageEvents meters a tenant's VM events (in log order): one read of
// the usage_vms rows they name, then each event in memory, then one write
// of each table.
func applyUsageEvents(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, evs []eventlog.Event) error {
	b := usageBatch{vms: map[uuid.UUID]*usageVM{}, held: map[recordKey]int64{}}
	for _, e := range evs {
		if e.Stream.Type == domain.StreamVM && b.vms[e.Stream.ID] == nil {
			b.vms[e.Stream.ID] = &usageVM{}
			b.order = append(b.order, e.Stream.ID)
		}
	}
	if len(b.order) == 0 {
		return nil
	}
	if err := b.load(ctx, tx, tenant); err != nil {
		return fmt.Errorf("usage: load: %w", err)
	}
	for _, e := range evs {
		if e.Stream.Type != domain.StreamVM {
			continue
		}
		if err := b.apply(e); err != nil {
			return err
		}
	}
	return b.save(ctx, tx, tenant)
}

func (b *usageBatch) load(ctx context.Context, tx pgx.Tx, tenant uuid.UUID) error {
	rows, err := tx.Query(ctx, `SELECT vm_id, aggregate, since, metered FROM usage_vms WHERE tenant_id = $1 AND vm_id = ANY($2)`, tenant, b.order)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var u usageVM
		if err := rows.Scan(&id, &u.raw, &u.since, &u.metered); err != nil {
			return err
		}
		if p := b.vms[id]; p != nil {
			u.found = true
			*p = u
		}
	}
	return rows.Err()
}

const addUsageRecordsSQL = `INSERT INTO usage_records (tenant_id, vm_id, period_start, state, cores, memory_mb, disk_gb, ipv4, snapshots,
		backups, backup_mb, held_us)
	SELECT $1, * FROM unnest($2::uuid[], $3::timestamptz[], $4::text[], $5::int[], $6::int[], $7::int[], $8::int[], $9::int[],
		$10::int[], $11::bigint[], $12::bigint[])
	ON CONFLICT (tenant_id, period_start, vm_id, state, cores, memory_mb, disk_gb, ipv4, snapshots, backups, backup_mb)
	DO UPDATE SET held_us = usage_records.held_us + EXCLUDED.held_us`

const upsertUsageVMsSQL = `INSERT INTO usage_vms (tenant_id, vm_id, aggregate, state, cores, memory_mb, disk_gb, ipv4, snapshots,
		backups, backup_mb, since, metered)
	SELECT $1, u.vm_id, u.aggregate::jsonb, u.state, u.cores, u.memory_mb, u.disk_gb, u.ipv4, u.snapshots, u.backups, u.backup_mb,
		u.since, u.metered
	FROM unnest($2::uuid[], $3::text[], $4::text[], $5::int[], $6::int[], $7::int[], $8::int[], $9::int[], $10::int[], $11::bigint[],
		$12::timestamptz[], $13::bool[]) AS u(vm_id, aggregate, state, cores, memory_mb, disk_gb, ipv4, snapshots, backups, backup_mb,
		since, metered)
	ON CONFLICT (tenant_id, vm_id) DO UPDATE SET aggregate = EXCLUDED.aggregate, state = EXCLUDED.state, cores = EXCLUDED.cores,
		memory_mb = EXCLUDED.memory_mb, disk_gb = EXCLUDED.disk_gb, ipv4 = EXCLUDED.ipv4, snapshots = EXCLUDED.snapshots,
		backups = EXCLUDED.backups, backup_mb = EXCLUDED.backup_mb, since = EXCLUDED.since, metered = EXCLUDED.metered`

// save writes the batch: usage_records (each key once, its microseconds
// summed: one statement cannot update a row twice) and usage_vms, in one
// round trip.
func (b *usageBatch) save(ctx context.Context, tx pgx.Tx, tenant uuid.UUID) error {
	q := &pgx.Batch{}
	if n := len(b.heldOrd); n > 0 {
		var (
			vms                                    = make([]uuid.UUID, n)
			hours                                  = make([]time.Time, n)
			states                                 = make([]string, n)
			cores, mem, disk, ipv4, snaps, backups = make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
			backupMB, held                         = make([]int64, n), make([]int64, n)
		)
		for i, k := range b.heldOrd {
			vms[i], hours[i], states[i] = k.vm, time.Unix(k.hour, 0).UTC(), k.m.State
			cores[i], mem[i], disk[i], ipv4[i] = int32(k.m.Cores), int32(k.m.MemoryMB), int32(k.m.DiskGB), int32(k.m.IPv4)
			snaps[i], backups[i], backupMB[i], held[i] = int32(k.m.Snapshots), int32(k.m.Backups), k.m.BackupMB, b.held[k]
		}
		q.Queue(addUsageRecordsSQL, tenant, vms, hours, states, cores, mem, disk, ipv4, snaps, backups, backupMB, held)
	}
	var (
		ids                                    []uuid.UUID
		aggs, states                           []string
		cores, mem, disk, ipv4, snaps, backups []int32
		backupMB                               []int64
		since                                  []time.Time
		metered                                []bool
	)
	for _, id := range b.order {
		u := b.vms[id]
		if !u.dirty {
			continue
		}
		ids, aggs, states = append(ids, id), append(aggs, string(u.raw)), append(states, u.m.State)
		cores, mem, disk = append(cores, int32(u.m.Cores)), append(mem, int32(u.m.MemoryMB)), append(disk, int32(u.m.DiskGB))
		ipv4, snaps, backups = append(ipv4, int32(u.m.IPv4)), append(snaps, int32(u.m.Snapshots)), append(backups, int32(u.m.Backups))
		backupMB, since, metered = append(backupMB, u.m.BackupMB), append(since, u.since), append(metered, u.metered)
	}
	if len(ids) > 0 {
		q.Queue(upsertUsageVMsSQL, tenant, ids, aggs, states, cores, mem, disk, ipv4, snaps, backups, backupMB, since, metered)
	}
	if q.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, q).Close(); err != nil {
		return fmt.Errorf("usage: save: %w", err)
	}
	return nil
}
