package agent

import (
	"context"
	"strings"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
)

// rebuild re-creates a VM's guest from a template: destroy the guest it
// has, clone the template (under the same vmid when still free), configure
// size, tags and cloud-init, start. Each finished step is reported as a
// step result before the next begins.
//
// Every attempt starts from what Proxmox shows, so an agent that died in
// the middle is resumed by the next one without a second guest: a guest of
// the VM whose description names this request (requestMark) is the new
// one, and is finished; any other is the old one, and is destroyed first.
func (a *Agent) rebuild(ctx context.Context, req request, e *domain.VMRebuildRequested, r *protocol.Result) error {
	p, err := a.registry.get(ctx, e.ClusterID, a.cfg.ClusterWait)
	if err != nil {
		return err
	}
	r.ClusterID = e.ClusterID
	tags := []string{protocol.VMTag(req.VMID), protocol.TenantTag(req.TenantID)}
	step := func(ctx context.Context, name string, node string, vmid int, task string) error {
		s := *r
		s.Step, s.Succeeded, s.Node, s.PVEVMID, s.TaskID, s.FinishedAt = name, true, node, vmid, task, time.Now().UTC()
		return a.publishResult(ctx, s)
	}
	return a.retry(ctx, domain.ActionRebuild, req.VMID, func(ctx context.Context) error {
		fresh, old, err := a.guestsOf(ctx, p, req, e.Name)
		if err != nil {
			return err
		}
		var upid string
		for _, g := range old {
			st, err := p.status(ctx, g)
			if err != nil && !notFound(err) {
				return err
			}
			if err == nil {
				if upid, err = a.destroy(ctx, p, g, st); err != nil {
					return err
				}
			}
		}
		if err := step(ctx, domain.RebuildDestroyed, "", 0, upid); err != nil {
			return err
		}
		if fresh == nil {
			// guestsOf listed the cluster: p's index is fresh.
			ce := &domain.VMCreateRequested{Name: e.Name, Kind: e.Kind, Spec: e.Spec, Template: e.Template, ClusterID: e.ClusterID, Node: e.Node}
			if fresh, upid, err = a.place(ctx, p, req, ce, e.VMID); err != nil {
				return err
			}
		}
		if err := step(ctx, domain.RebuildCloned, fresh.Node, fresh.VMID, upid); err != nil {
			return err
		}
		r.Node, r.PVEVMID = fresh.Node, fresh.VMID
		upid, err = a.build(ctx, p, *fresh, e.Spec, tags, e.CloudInit, e.Network, func(ctx context.Context) error {
			return step(ctx, domain.RebuildConfigured, fresh.Node, fresh.VMID, "")
		})
		if upid != "" {
			r.TaskID = upid
		}
		if err == nil {
			p.index.put(built(*fresh, tags))
		}
		return err
	})
}

// guestsOf sorts the VM's guests on p into the one this request cloned
// (nil if none yet) and the others. A guest is the VM's by its tag, or, a
// clone not yet tagged, by its name and a description naming the VM.
func (a *Agent) guestsOf(ctx context.Context, p *pve, req request, name string) (*guest, []guest, error) {
	all, err := p.guests(ctx)
	if err != nil {
		return nil, nil, err
	}
	tag, mark := protocol.VMTag(req.VMID), requestMark(req)
	var fresh *guest
	var old []guest
	for _, g := range all {
		if g.Template || !(g.hasTag(tag) || g.Name == name) {
			continue
		}
		cfg, err := p.config(ctx, g)
		if notFound(err) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		d := stringOf(cfg["description"])
		switch {
		case !g.hasTag(tag) && !strings.Contains(d, tag):
			// Another guest of that name, not the VM's.
		case strings.Contains(d, mark) && fresh == nil:
			fresh = &g
		default:
			old = append(old, g)
		}
	}
	return fresh, old, nil
}
