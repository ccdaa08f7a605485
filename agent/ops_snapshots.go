package agent

import (
	"context"
	"fmt"
	"net/url"
	"slices"

	"github.com/luthermonson/go-proxmox"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
)

// upidCall runs one Proxmox call that answers a task's UPID and waits for
// the task; it returns the UPID.
func (p *pve) upidCall(ctx context.Context, method, path string, body map[string]any) (string, error) {
	var upid proxmox.UPID
	var err error
	switch method {
	case "DELETE":
		err = p.c.Delete(ctx, path, &upid)
	default:
		err = p.c.Post(ctx, path, body, &upid)
	}
	if err != nil || upid == "" {
		return "", err
	}
	return string(upid), p.wait(ctx, proxmox.NewTask(upid, p.c))
}

// snapshotRollback rolls the guest back to a snapshot; running it again
// rolls back again, which leaves the same guest. The result says the
// guest's power state after (running only when the snapshot saved RAM).
func (a *Agent) snapshotRollback(ctx context.Context, req request, e *domain.VMSnapshotRollbackRequested, r *protocol.Result) error {
	r.Snapshot = e.Name
	return a.retry(ctx, domain.ActionSnapshotRollback, req.VMID, func(ctx context.Context) error {
		p, g, err := a.locateFor(ctx, req.VMID, r)
		if err != nil {
			return err
		}
		upid, err := p.upidCall(ctx, "POST", g.path()+"/snapshot/"+url.PathEscape(e.Name)+"/rollback", nil)
		if upid != "" {
			r.TaskID = upid
		}
		if err != nil {
			return err
		}
		st, err := p.status(ctx, *g)
		if err != nil {
			return err
		}
		r.GuestStatus = st
		return nil
	})
}

// snapshotDelete removes a snapshot, unless it is gone already.
func (a *Agent) snapshotDelete(ctx context.Context, req request, e *domain.VMSnapshotDeleteRequested, r *protocol.Result) error {
	r.Snapshot = e.Name
	return a.retry(ctx, domain.ActionSnapshotDelete, req.VMID, func(ctx context.Context) error {
		p, g, err := a.locateFor(ctx, req.VMID, r)
		if err != nil {
			return err
		}
		names, err := p.snapshots(ctx, *g)
		if err != nil {
			return err
		}
		if !slices.Contains(names, e.Name) {
			return nil
		}
		upid, err := p.upidCall(ctx, "DELETE", g.path()+"/snapshot/"+url.PathEscape(e.Name), nil)
		if upid != "" {
			r.TaskID = upid
		}
		if err != nil {
			return fmt.Errorf("delete snapshot %s: %w", e.Name, err)
		}
		return nil
	})
}
