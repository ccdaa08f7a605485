package pgstore

import (
	"context"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// usageWriter keeps the tenant_usage table inside AppendWith and
// AppendGroup. Each call scopes the transaction to its tenant first: a
// group's transaction writes the usage of several.
type usageWriter txTables

const scopeSQL = `SELECT set_config('app.tenant_id', $1, true)`

// Add checks the quota in the UPDATE itself: the row lock it takes
// serialises concurrent changes of one tenant, so two of them cannot both
// fit the last room.
func (w usageWriter) Add(ctx context.Context, tenant uuid.UUID, d commands.Usage, q domain.Quota) (bool, error) {
	b := &pgx.Batch{}
	queueAdd(b, tenant, d, q)
	br := w.tx.SendBatch(ctx, b)
	defer br.Close()
	return readAdd(br)
}

// queueAdd queues Add's statements; readAdd reads what they did.
func queueAdd(b *pgx.Batch, tenant uuid.UUID, d commands.Usage, q domain.Quota) {
	b.Queue(scopeSQL, tenant.String())
	b.Queue(`INSERT INTO tenant_usage (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING`, tenant)
	b.Queue(`UPDATE tenant_usage SET vms = vms + $2, cores = cores + $3, memory_mb = memory_mb + $4, disk_gb = disk_gb + $5,
			ipv4 = ipv4 + $10
		WHERE tenant_id = $1
		  AND ($2 <= 0 OR vms + $2 <= $6) AND ($3 <= 0 OR cores + $3 <= $7)
		  AND ($4 <= 0 OR memory_mb + $4 <= $8) AND ($5 <= 0 OR disk_gb + $5 <= $9)
		  AND ($10 <= 0 OR ipv4 + $10 <= $11)`,
		tenant, d.VMs, d.Cores, d.MemoryMB, d.DiskGB, q.MaxVMs, q.MaxCores, q.MaxMemoryMB, q.MaxDiskGB, d.IPv4, q.IPv4Limit())
}

func readAdd(br pgx.BatchResults) (applied bool, err error) {
	for range 2 {
		if _, err := br.Exec(); err != nil {
			return false, err
		}
	}
	tag, err := br.Exec()
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// CurrentAt is tenant's usage (zero when nothing was ever counted) and the
// version of the tenant's stream, in one statement: a create group reads
// both under the tenant's lock.
func (w usageWriter) CurrentAt(ctx context.Context, tenant uuid.UUID) (commands.Usage, int64, error) {
	b := &pgx.Batch{}
	queueCurrentAt(b, tenant)
	br := w.tx.SendBatch(ctx, b)
	defer br.Close()
	st, err := readCurrentAt(br)
	return st.Usage, st.Version, err
}

// queueCurrentAt queues CurrentAt's statements; readCurrentAt reads them.
func queueCurrentAt(b *pgx.Batch, tenant uuid.UUID) {
	b.Queue(scopeSQL, tenant.String())
	b.Queue(`SELECT coalesce(u.vms, 0), coalesce(u.cores, 0), coalesce(u.memory_mb, 0), coalesce(u.disk_gb, 0), coalesce(u.ipv4, 0),
			coalesce(s.version, 0)
		FROM (SELECT) AS one
		LEFT JOIN tenant_usage u ON u.tenant_id = $1
		LEFT JOIN streams s ON s.stream_id = $2`, tenant, eventlog.StreamID{Type: domain.StreamTenant, ID: tenant}.String())
}

func readCurrentAt(br pgx.BatchResults) (commands.TenantState, error) {
	var st commands.TenantState
	if _, err := br.Exec(); err != nil {
		return st, err
	}
	u := &st.Usage
	err := br.QueryRow().Scan(&u.VMs, &u.Cores, &u.MemoryMB, &u.DiskGB, &u.IPv4, &st.Version)
	return st, err
}
