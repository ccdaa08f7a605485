package pgstore

import (
	"context"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
)

// usageWriter keeps the tenant_usage table inside AppendWith.
type usageWriter txTables

// Add checks the quota in the UPDATE itself: the row lock it takes
// serialises concurrent changes of one tenant, so two of them cannot both
// fit the last room.
func (w usageWriter) Add(ctx context.Context, tenant uuid.UUID, d commands.Usage, q domain.Quota) (bool, error) {
	if _, err := w.tx.Exec(ctx, `INSERT INTO tenant_usage (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING`, tenant); err != nil {
		return false, err
	}
	tag, err := w.tx.Exec(ctx, `UPDATE tenant_usage SET vms = vms + $2, cores = cores + $3, memory_mb = memory_mb + $4, disk_gb = disk_gb + $5,
			ipv4 = ipv4 + $10
		WHERE tenant_id = $1
		  AND ($2 <= 0 OR vms + $2 <= $6) AND ($3 <= 0 OR cores + $3 <= $7)
		  AND ($4 <= 0 OR memory_mb + $4 <= $8) AND ($5 <= 0 OR disk_gb + $5 <= $9)
		  AND ($10 <= 0 OR ipv4 + $10 <= $11)`,
		tenant, d.VMs, d.Cores, d.MemoryMB, d.DiskGB, q.MaxVMs, q.MaxCores, q.MaxMemoryMB, q.MaxDiskGB, d.IPv4, q.IPv4Limit())
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

func (w usageWriter) Current(ctx context.Context, tenant uuid.UUID) (commands.Usage, error) {
	var u commands.Usage
	err := w.tx.QueryRow(ctx, `SELECT vms, cores, memory_mb, disk_gb, ipv4 FROM tenant_usage WHERE tenant_id = $1`, tenant).
		Scan(&u.VMs, &u.Cores, &u.MemoryMB, &u.DiskGB, &u.IPv4)
	return u, err
}
