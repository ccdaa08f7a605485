package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
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
		c, err := h.vmChange(ctx, r.TenantID, r.VMID, nil, func(v *domain.VM) ([]domain.Event, error) {
			if r.Step != "" {
				return v.RebuildStep(r.Step, r.Node, r.PVEVMID, r.TaskID), nil
			}
			if events, mine := v.BackupOrSnapshotResult(outcomeOf(r)); mine { // vm_backups.go
				return events, nil
			}
			var prov *domain.VMProvisioned
			if (r.Action == domain.ActionCreate || r.Action == domain.ActionRebuild) && r.Succeeded {
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
		if r.Step != "" {
			c.commandID = uuid.NewSHA1(resultNamespace, append(r.RequestEventID[:], r.Step...))
		}
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
	settled, err := h.tables.VMs().Settled(ctx, cluster)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]candidate, len(settled))
	for _, v := range settled {
		out[v.ID] = candidate{tenant: v.Tenant, believed: v.Status, pendingChanges: v.PendingChanges}
	}
	return out, nil
}

// candidate is a VM reconciliation looks at: its tenant, and the status the
// read model shows ("" when the read model does not know it as settled).
type candidate struct {
	tenant         uuid.UUID
	believed       domain.VMStatus
	pendingChanges bool
}

// observedGuest is a guest's status as reconciliation saw it and, when
// running, the latest its boot can have been (by the agent's clock, the
// uptime rounded up: a boot a second off is judged not after a change).
type observedGuest struct {
	status   domain.VMStatus
	bootedAt time.Time
}

// RecordObservation turns reconciliation's view of a cluster into drift
// events: a guest stopped, started or deleted outside AccountDB (missing
// from two listings in a row, see confirmedMissing), or one
// with pending cloud-init changes rebooted outside AccountDB since they
// were written (vm_cloud_init_applied). The read
// model only picks which VMs to look at (those whose status it shows
// differently, or does not know); each decision is made on the VM's own
// stream, so a stale read model can never record a wrong event.
func (h *Handler) RecordObservation(ctx context.Context, obs protocol.Observation) (int, error) {
	if h.tables == nil {
		return 0, ErrNoTables
	}
	candidates, err := h.observedCandidates(ctx, obs.ClusterID)
	if err != nil {
		return 0, err
	}
	observed := map[uuid.UUID]observedGuest{}
	for _, g := range obs.Guests {
		o := observedGuest{}
		switch {
		case !g.Changing && (g.Status == "running" || g.Status == "paused"):
			o.status = domain.VMRunning
			if g.UptimeSeconds > 0 {
				o.bootedAt = obs.ObservedAt.Add(-time.Duration(g.UptimeSeconds+1) * time.Second)
			}
		case !g.Changing && g.Status == "stopped":
			o.status = domain.VMStopped
		default:
			// "unknown": the guest's node is offline, so Proxmox cannot
			// say whether it runs; or Changing: listed midway through an
			// operation of the agent's, whose result, perhaps recorded
			// already, says how it ended. Neither is drift: the VM is
			// neither looked at nor, being listed, taken for deleted.
			delete(candidates, g.VMID)
			continue
		}
		observed[g.VMID] = o
		if c, known := candidates[g.VMID]; !known {
			candidates[g.VMID] = candidate{tenant: g.TenantID}
		} else if c.believed == o.status && !(c.pendingChanges && !o.bootedAt.IsZero()) {
			delete(candidates, g.VMID) // Proxmox agrees with the read model
		}
	}
	confirmed, err := h.confirmedMissing(ctx, obs, candidates, observed)
	if err != nil {
		return 0, err
	}
	recorded := 0
	for vm, c := range candidates {
		o, seen := observed[vm]
		if !seen {
			if !confirmed[vm] {
				continue
			}
			o.status = domain.VMDeleted
		}
		res, err := h.execute(ctx, agentActor(uuid.Must(uuid.NewV7()), c.tenant), Options{}, func(ctx context.Context) (change, error) {
			return h.vmChange(ctx, c.tenant, vm, nil, func(v *domain.VM) ([]domain.Event, error) {
				if v.ClusterID != obs.ClusterID {
					return nil, nil
				}
				return v.Observe(o.status, o.bootedAt), nil
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

// confirmedMissing records which candidates this listing missed and
// returns those an earlier listing of the cluster missed as well: only they
// are taken for deleted. A guest missing once (a node slow to answer, a
// listing taken mid-migration) keeps its address and its quota until the
// next listing, one reconciliation interval later, confirms it gone.
func (h *Handler) confirmedMissing(ctx context.Context, obs protocol.Observation, candidates map[uuid.UUID]candidate,
	observed map[uuid.UUID]observedGuest) (map[uuid.UUID]bool, error) {
	var missing []uuid.UUID
	for vm := range candidates {
		if _, seen := observed[vm]; !seen {
			missing = append(missing, vm)
		}
	}
	confirmed, err := h.tables.Unseen().Missed(ctx, obs.ClusterID, obs.ObservedAt, missing)
	if err != nil {
		return nil, fmt.Errorf("guests missing from the listing of %s: %w", obs.ClusterID, err)
	}
	out := make(map[uuid.UUID]bool, len(confirmed))
	for _, vm := range confirmed {
		out[vm] = true
	}
	return out, nil
}

// sweepBatch bounds the VMs one sweep fails; the next sweep takes the rest.
const sweepBatch = 500

// SweepDeadlines fails every VM whose pending action has had no result for
// longer than deadline: a lost task must not leave a VM in a transient
// status forever. It returns how many it failed.
func (h *Handler) SweepDeadlines(ctx context.Context, deadline time.Duration) (int, error) {
	if h.tables == nil {
		return 0, ErrNoTables
	}
	list, err := h.tables.VMs().Overdue(ctx, deadline, sweepBatch)
	if err != nil {
		return 0, err
	}
	failed := 0
	for _, s := range list {
		res, err := h.execute(ctx, agentActor(uuid.Must(uuid.NewV7()), s.Tenant), Options{}, func(ctx context.Context) (change, error) {
			return h.vmChange(ctx, s.Tenant, s.ID, nil, func(v *domain.VM) ([]domain.Event, error) {
				// Re-check on the stream: the result may have come meanwhile.
				if v.Pending == "" || h.now().Sub(v.UpdatedAt) < domain.ActionDeadline(v.Pending, deadline) {
					return nil, nil
				}
				return v.TimeOut(domain.ActionDeadline(v.Pending, deadline)), nil
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
	if h.tables == nil {
		return ErrNoTables
	}
	return h.tables.Inventory().Record(ctx, inv)
}
