package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
)

// request is one VM request event, decoded.
type request struct {
	EventID       uuid.UUID
	CorrelationID uuid.UUID
	TenantID      uuid.UUID
	VMID          uuid.UUID // the AccountDB VM (its stream id)
	Action        string
	Body          domain.Event
	// Delivery is JetStream's delivery count of the request: 1 the first
	// time (0: not known). Only a first delivery's first attempt knows that
	// no earlier attempt left anything on Proxmox.
	Delivery uint64
}

// operation carries out one action on Proxmox, telling r what it did.
type operation func(a *Agent, ctx context.Context, req request, r *protocol.Result) error

// operations are what the agent does for each of domain.VMActions, keyed by
// its name; TestOperationsCoverVMActions fails when one is missing or
// unknown to the domain.
var operations = map[string]operation{
	domain.ActionCreate:   bodied((*Agent).create),
	domain.ActionStart:    onGuest(unlessIn("running", startGuest), false),
	domain.ActionStop:     onGuest(unlessIn("stopped", stopGuest), false),
	domain.ActionShutdown: onGuest(unlessIn("stopped", shutdownGuest), false),
	domain.ActionReboot:   onGuest(always(rebootGuest), false),
	domain.ActionResize:   bodied((*Agent).resize),
	domain.ActionSnapshot: bodied((*Agent).snapshot),
	domain.ActionDelete:   onGuest((*Agent).destroy, true),
	// ops_cloudinit.go, ops_rebuild.go
	domain.ActionConfigure: bodied((*Agent).configure),
	domain.ActionRebuild:   bodied((*Agent).rebuild),
	// ops_snapshots.go, ops_backup.go, ops_restore.go
	domain.ActionSnapshotRollback: bodied((*Agent).snapshotRollback),
	domain.ActionSnapshotDelete:   bodied((*Agent).snapshotDelete),
	domain.ActionBackup:           bodied((*Agent).backup),
	domain.ActionBackupDelete:     bodied((*Agent).backupDelete),
	domain.ActionRestore:          bodied((*Agent).restoreInPlace),
}

// bodied is the operation run takes, given the request event of type E.
// Another event naming the action (a vm_action_requested for "resize", say)
// is an unknown action, as it is to the domain.
func bodied[E domain.Event](run func(a *Agent, ctx context.Context, req request, e E, r *protocol.Result) error) operation {
	return func(a *Agent, ctx context.Context, req request, r *protocol.Result) error {
		e, ok := req.Body.(E)
		if !ok {
			return fmt.Errorf("unknown action %q", req.Action)
		}
		return run(a, ctx, req, e, r)
	}
}

// execute carries out req. It returns the result to publish, success or a
// permanent failure; a non-nil error means the operation was abandoned
// (ctx ended) and no result may be published.
func (a *Agent) execute(ctx context.Context, req request) (protocol.Result, error) {
	r := protocol.Result{
		RequestEventID: req.EventID, CorrelationID: req.CorrelationID,
		TenantID: req.TenantID, VMID: req.VMID, Action: req.Action,
	}
	err := fmt.Errorf("unknown action %q", req.Action)
	if op, ok := operations[req.Action]; ok {
		err = op(a, ctx, req, &r)
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return r, err
		}
		r.Succeeded, r.Error = false, pveMessage(err)
	} else {
		r.Succeeded = true
	}
	return r, nil
}

// retry runs op until it succeeds, fails permanently, or has used the retry
// budget, with exponential backoff and jitter between attempts. Every
// operation starts by reading the state on Proxmox, so running it again
// after a partial attempt picks up where the last one stopped.
func (a *Agent) retry(ctx context.Context, action string, vm uuid.UUID, op func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !transient(err) || attempt >= a.cfg.RetryAttempts {
			return err
		}
		d := backoff(attempt, a.cfg.RetryBaseDelay, a.cfg.RetryMaxDelay)
		a.metrics.retries.WithLabelValues(action).Inc()
		a.log.Warn("proxmox: transient failure, retrying", "action", action, "vm_id", vm, "attempt", attempt, "retry_in", d, "err", err)
		if !sleep(ctx, d) {
			return ctx.Err()
		}
	}
}
