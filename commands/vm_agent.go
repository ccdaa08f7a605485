package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// resultNamespace derives a result's command id from its request's event id,
// so a result delivered twice is appended once.
var resultNamespace = uuid.MustParse("0b5d3c1e-9a77-4e0e-8f4c-6a1d2e3f4a5b")

// agentActor is the actor of events the agent's reports cause: no user.
func agentActor(correlation uuid.UUID, tenant uuid.UUID) Actor {
	return Actor{TenantID: tenant, CorrelationID: correlation}
}

// RecordResult appends the agent's outcome of a requested VM action to the
// VM's stream, caused by the request. It is idempotent: a result seen before,
// or one for an action no longer pending (it timed out), records nothing.
func (h *Handler) RecordResult(ctx context.Context, r protocol.Result) (Result, error) {
	a := agentActor(r.CorrelationID, r.TenantID)
	a.Metadata.UserAgent = "accountdb-agent"
	o := Options{}
	res, err := h.execute(ctx, a, o, func(ctx context.Context) (change, error) {
		c, err := h.vmChange(ctx, r.TenantID, r.VMID, func(v *domain.VM) ([]domain.Event, error) {
			var prov *domain.VMProvisioned
			if r.Action == domain.ActionCreate && r.Succeeded {
				prov = &domain.VMProvisioned{ClusterID: r.ClusterID, Node: r.Node, VMID: r.PVEVMID, TaskID: r.TaskID}
			}
			var spec *domain.VMSpec
			if r.Action == domain.ActionResize && r.Succeeded {
				spec = &domain.VMSpec{Cores: r.Cores, MemoryMB: r.MemoryMB, DiskGB: r.DiskGB}
			}
			return v.Result(r.Action, r.Succeeded, r.TaskID, r.Error, prov, spec, r.Snapshot), nil
		})
		c.causation = r.RequestEventID
		c.commandID = uuid.NewSHA1(resultNamespace, r.RequestEventID[:])
		return c, err
	})
	if err != nil {
		return Result{}, fmt.Errorf("record result of %s: %w", r.RequestEventID, err)
	}
	return res, nil
}

// observedCandidates lists the VMs AccountDB places on cluster and believes
// settled (running or stopped), with that status: the ones reconciliation
// can find drifted.
func (h *Handler) observedCandidates(ctx context.Context, cluster uuid.UUID) (map[uuid.UUID]candidate, error) {
	out := map[uuid.UUID]candidate{}
	err := tenantdb.ReadTx(ctx, h.pool, tenantdb.System(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT vm_id, tenant_id, status FROM vms WHERE cluster_id = $1 AND status IN ('running', 'stopped') AND pending = ''`, cluster)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				vm     uuid.UUID
				c      candidate
				status string
			)
			if err := rows.Scan(&vm, &c.tenant, &status); err != nil {
				return err
			}
			c.believed = domain.VMStatus(status)
			out[vm] = c
		}
		return rows.Err()
	})
	return out, err
}

// candidate is a VM reconciliation looks at: its tenant, and the status the
// read model shows ("" when the read model does not know it as settled).
type candidate struct {
	tenant   uuid.UUID
	believed domain.VMStatus
}

// RecordObservation turns reconciliation's view of a cluster into drift
// events: a guest stopped, started or deleted outside AccountDB. The read
// model only picks which VMs to look at (those whose status it shows
// differently, or does not know); each decision is made on the VM's own
// stream, so a stale read model can never record a wrong event.
func (h *Handler) RecordObservation(ctx context.Context, obs protocol.Observation) (int, error) {
	candidates, err := h.observedCandidates(ctx, obs.ClusterID)
	if err != nil {
		return 0, err
	}
	observed := map[uuid.UUID]domain.VMStatus{}
	for _, g := range obs.Guests {
		st := domain.VMStopped
		if g.Status == "running" || g.Status == "paused" {
			st = domain.VMRunning
		}
		observed[g.VMID] = st
		if c, known := candidates[g.VMID]; !known {
			candidates[g.VMID] = candidate{tenant: g.TenantID}
		} else if c.believed == st {
			delete(candidates, g.VMID) // Proxmox agrees with the read model
		}
	}
	recorded := 0
	for vm, c := range candidates {
		st, seen := observed[vm]
		if !seen {
			st = domain.VMDeleted
		}
		res, err := h.execute(ctx, agentActor(uuid.Must(uuid.NewV7()), c.tenant), Options{}, func(ctx context.Context) (change, error) {
			return h.vmChange(ctx, c.tenant, vm, func(v *domain.VM) ([]domain.Event, error) {
				if v.ClusterID != obs.ClusterID {
					return nil, nil
				}
				return v.Observe(st), nil
			})
		})
		if err != nil {
			return recorded, fmt.Errorf("observe %s: %w", vm, err)
		}
		if res.Position > 0 {
			recorded++
		}
	}
	return recorded, nil
}

// SweepDeadlines fails every VM whose pending action has had no result for
// longer than deadline: a lost task must not leave a VM in a transient
// status forever. It returns how many it failed.
func (h *Handler) SweepDeadlines(ctx context.Context, deadline time.Duration) (int, error) {
	type stale struct{ vm, tenant uuid.UUID }
	var list []stale
	err := tenantdb.ReadTx(ctx, h.pool, tenantdb.System(), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT vm_id, tenant_id FROM vms WHERE pending <> '' AND updated_at < now() - $1::interval LIMIT 500`,
			fmt.Sprintf("%d milliseconds", deadline.Milliseconds()))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s stale
			if err := rows.Scan(&s.vm, &s.tenant); err != nil {
				return err
			}
			list = append(list, s)
		}
		return rows.Err()
	})
	if err != nil {
		return 0, err
	}
	failed := 0
	for _, s := range list {
		res, err := h.execute(ctx, agentActor(uuid.Must(uuid.NewV7()), s.tenant), Options{}, func(ctx context.Context) (change, error) {
			return h.vmChange(ctx, s.tenant, s.vm, func(v *domain.VM) ([]domain.Event, error) {
				// Re-check on the stream: the result may have come meanwhile.
				if v.Pending == "" || h.now().Sub(v.UpdatedAt) < deadline {
					return nil, nil
				}
				return v.TimeOut(deadline), nil
			})
		})
		if err != nil {
			return failed, err
		}
		if res.Position > 0 {
			failed++
		}
	}
	return failed, nil
}

// RecordInventory caches the agent's view of a cluster's nodes and templates.
func (h *Handler) RecordInventory(ctx context.Context, inv protocol.Inventory) error {
	nodes, templates := inv.Nodes, inv.Templates
	if nodes == nil {
		nodes = []protocol.Node{}
	}
	if templates == nil {
		templates = []protocol.Template{}
	}
	return tenantdb.InTx(ctx, h.pool, tenantdb.Tenant(domain.PlatformTenant), func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO cluster_inventory (tenant_id, cluster_id, nodes, templates, observed_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant_id, cluster_id) DO UPDATE SET nodes = EXCLUDED.nodes, templates = EXCLUDED.templates, observed_at = EXCLUDED.observed_at
			WHERE cluster_inventory.observed_at <= EXCLUDED.observed_at`,
			domain.PlatformTenant, inv.ClusterID, nodes, templates, inv.ObservedAt)
		return err
	})
}
