package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// inventory is the cluster_inventory table, kept in the platform tenant.
type inventory struct{ pool *pgxpool.Pool }

func (i inventory) ClusterOffering(ctx context.Context, tenant uuid.UUID, template, kind string, cluster uuid.UUID) (uuid.UUID, bool, error) {
	var found uuid.UUID
	ok, err := queryRow(ctx, i.pool, tenantScope(tenant), `SELECT cluster_id FROM cluster_inventory, jsonb_array_elements(templates) t
			WHERE t->>'name' = $1 AND t->>'kind' = $2 AND ($3 = '00000000-0000-0000-0000-000000000000'::uuid OR cluster_id = $3)
			ORDER BY observed_at DESC LIMIT 1`, []any{template, kind, cluster}, &found)
	return found, ok, err
}

func (i inventory) IsOSTemplate(ctx context.Context, tenant uuid.UUID, template string, cluster uuid.UUID) (bool, error) {
	var yes bool
	_, err := queryRow(ctx, i.pool, tenantScope(tenant), `SELECT EXISTS (SELECT 1 FROM cluster_inventory, jsonb_array_elements(templates) t
			WHERE cluster_id = $1 AND t->>'name' = $2 AND t->>'kind' = 'lxc' AND coalesce(t->>'ostemplate', '') <> '')`,
		[]any{cluster, template}, &yes)
	return yes, err
}

func (i inventory) Record(ctx context.Context, inv protocol.Inventory) error {
	// Empty lists, not JSON null: readers walk them with jsonb functions.
	nodes, templates := inv.Nodes, inv.Templates
	if nodes == nil {
		nodes = []protocol.Node{}
	}
	if templates == nil {
		templates = []protocol.Template{}
	}
	return tenantdb.InTx(ctx, i.pool, tenantScope(domain.PlatformTenant), func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO cluster_inventory (tenant_id, cluster_id, nodes, templates, observed_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant_id, cluster_id) DO UPDATE SET nodes = EXCLUDED.nodes, templates = EXCLUDED.templates, observed_at = EXCLUDED.observed_at
			WHERE cluster_inventory.observed_at <= EXCLUDED.observed_at`,
			domain.PlatformTenant, inv.ClusterID, nodes, templates, inv.ObservedAt)
		return err
	})
}

// vmIndex reads the vms read model across tenants.
type vmIndex struct{ pool *pgxpool.Pool }

func (v vmIndex) Settled(ctx context.Context, cluster uuid.UUID) ([]commands.IndexedVM, error) {
	return v.list(ctx, `SELECT vm_id, tenant_id, status, pending_changes FROM vms WHERE cluster_id = $1 AND status IN ('running', 'stopped') AND pending = ''`, cluster)
}

func (v vmIndex) Overdue(ctx context.Context, age time.Duration, limit int) ([]commands.IndexedVM, error) {
	return v.list(ctx, `SELECT vm_id, tenant_id, status, pending_changes FROM vms WHERE pending <> '' AND updated_at < now() - $1::interval LIMIT $2`,
		fmt.Sprintf("%d milliseconds", age.Milliseconds()), limit)
}

func (v vmIndex) list(ctx context.Context, sql string, args ...any) ([]commands.IndexedVM, error) {
	var out []commands.IndexedVM
	err := tenantdb.ReadTx(ctx, v.pool, tenantdb.System(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				vm     commands.IndexedVM
				status string
			)
			if err := rows.Scan(&vm.ID, &vm.Tenant, &status, &vm.PendingChanges); err != nil {
				return err
			}
			vm.Status = domain.VMStatus(status)
			out = append(out, vm)
		}
		return rows.Err()
	})
	return out, err
}
