package pgstore

import (
	"context"
	"time"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// unseen is the vm_unseen table, kept in the platform tenant.
type unseen struct{ pool *pgxpool.Pool }

func (u unseen) Missed(ctx context.Context, cluster uuid.UUID, listedAt time.Time, vms []uuid.UUID) ([]uuid.UUID, error) {
	if vms == nil {
		vms = []uuid.UUID{}
	}
	var confirmed []uuid.UUID
	err := tenantdb.InTx(ctx, u.pool, tenantScope(domain.PlatformTenant), func(tx pgx.Tx) error {
		// Seen again, or no longer a VM the listing is checked for: forgotten.
		if _, err := tx.Exec(ctx, `DELETE FROM vm_unseen WHERE tenant_id = $1 AND cluster_id = $2 AND vm_id <> ALL($3)`,
			domain.PlatformTenant, cluster, vms); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT vm_id FROM vm_unseen WHERE tenant_id = $1 AND cluster_id = $2 AND missed_at < $3`,
			domain.PlatformTenant, cluster, listedAt)
		if err != nil {
			return err
		}
		if confirmed, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID]); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO vm_unseen (tenant_id, cluster_id, vm_id, missed_at)
			SELECT $1, $2, v, $3 FROM unnest($4::uuid[]) AS v ON CONFLICT DO NOTHING`, domain.PlatformTenant, cluster, listedAt, vms)
		return err
	})
	return confirmed, err
}
