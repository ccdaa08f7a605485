package agent

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
)

// restoreBody is the POST /nodes/{node}/{qemu,lxc} that restores archive
// into vmid: qemu takes archive=, a container restore=1 with the archive
// as its ostemplate. overrides are set on the restored configuration (PVE
// applies them in the same task).
func restoreBody(kind string, vmid int, archive string, force bool, overrides map[string]any) map[string]any {
	body := map[string]any{"vmid": vmid}
	if kind == kindLXC {
		body["ostemplate"], body["restore"] = archive, 1
	} else {
		body["archive"] = archive
	}
	if force {
		body["force"] = 1
	}
	for k, v := range overrides {
		body[k] = v
	}
	return body
}

// restoreInPlace replaces the VM's guest with a backup: a running guest
// is stopped, then the archive is restored over its vmid (force=1). Done
// again after a crash it restores again, which leaves the same guest; a
// restore still running from the first attempt keeps the guest locked
// ("create"), which the retry waits out.
func (a *Agent) restoreInPlace(ctx context.Context, req request, e *domain.VMRestoreRequested, r *protocol.Result) error {
	return a.retry(ctx, domain.ActionRestore, req.VMID, func(ctx context.Context) error {
		p, g, err := a.locateFor(ctx, req.VMID, r)
		if err != nil {
			return err
		}
		st, err := p.status(ctx, *g)
		if err != nil {
			return err
		}
		if st != "stopped" {
			if _, err := a.power(ctx, p, *g, st, stopGuest); err != nil {
				return fmt.Errorf("stop before restore: %w", err)
			}
		}
		node := g.Node
		if e.Node != "" && e.Node != g.Node && !sharedVolume(e.VolumeID) {
			return fmt.Errorf("the archive %s is on node %s's local storage, the guest on %s", e.VolumeID, e.Node, g.Node)
		}
		body := restoreBody(g.Kind, g.VMID, e.VolumeID, true, map[string]any{
			"tags": strings.Join([]string{protocol.VMTag(req.VMID), protocol.TenantTag(req.TenantID)}, ";"),
		})
		upid, err := p.upidCall(ctx, "POST", "/nodes/"+url.PathEscape(node)+"/"+g.Kind, body)
		if upid != "" {
			r.TaskID = upid
		}
		if err != nil {
			return err
		}
		r.Node, r.PVEVMID = node, g.VMID
		return nil
	})
}

// sharedVolume reports whether a backup volume is on a storage every node
// sees; only "local" is not (as in a default installation).
func sharedVolume(volid string) bool {
	storage, _, _ := strings.Cut(volid, ":")
	return storage != domain.DefaultBackupStorage
}

// restoreNew makes a new VM's guest from a backup on node: the guest gets
// the VM's tags in the restore task itself, so an attempt resumed after a
// crash finds it (create's findCreated) instead of restoring a second one.
// It returns the guest and the restore's UPID.
func (a *Agent) restoreNew(ctx context.Context, p *pve, req request, e *domain.VMCreateRequested) (*guest, string, error) {
	used := p.vmidsInUse()
	node := e.Node
	if node == "" {
		nodes, err := a.candidates(ctx, p, e.Spec.MemoryMB)
		if err != nil {
			return nil, "", err
		}
		if len(nodes) == 0 {
			return nil, "", fmt.Errorf("no online node on cluster %s", p.name)
		}
		node = nodes[0]
	}
	name := "name"
	if e.Kind == domain.KindLXC {
		name = "hostname"
	}
	overrides := map[string]any{
		"tags": strings.Join([]string{protocol.VMTag(req.VMID), protocol.TenantTag(req.TenantID)}, ";"),
		name:   e.Name, "description": description(req),
	}
	for range 20 {
		vmid := a.randomVMID(used)
		used.add(vmid)
		body := restoreBody(string(e.Kind), vmid, e.Restore.VolumeID, false, overrides)
		upid, err := p.upidCall(ctx, "POST", "/nodes/"+url.PathEscape(node)+"/"+string(e.Kind), body)
		if err != nil && upid == "" && strings.Contains(err.Error(), "already exists") {
			continue
		}
		if err != nil {
			return nil, upid, err
		}
		g := &guest{Kind: string(e.Kind), VMID: vmid, Node: node, Name: e.Name, Status: "stopped"}
		p.index.put(*g)
		p.nodes.placedOn(node, e.Spec.MemoryMB)
		return g, upid, nil
	}
	return nil, "", fmt.Errorf("no free vmid found in %d-%d", a.cfg.VMIDMin, a.cfg.VMIDMax)
}
