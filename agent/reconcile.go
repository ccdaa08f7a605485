package agent

import (
	"context"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
)

// reconcileLoop publishes the cluster's inventory as soon as it is learned,
// then its observation and inventory every ReconcileInterval until ctx ends.
func (a *Agent) reconcileLoop(ctx context.Context, p *pve) {
	a.publishInventory(ctx, p)
	t := time.NewTicker(a.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			outcome := "ok"
			if !a.publishObservation(ctx, p) || !a.publishInventory(ctx, p) {
				outcome = "error"
			}
			a.metrics.reconciles.WithLabelValues(outcome).Inc()
		}
	}
}

// observe is every AccountDB guest on the cluster: tagged with a VM id.
func (a *Agent) observe(ctx context.Context, p *pve) (protocol.Observation, error) {
	all, err := p.guests(ctx)
	if err != nil {
		return protocol.Observation{}, err
	}
	o := protocol.Observation{ClusterID: p.id, Guests: []protocol.ObservedGuest{}, ObservedAt: time.Now().UTC()}
	for _, g := range all {
		vm, ok := g.accountDBVM()
		if !ok || g.Template {
			continue
		}
		o.Guests = append(o.Guests, protocol.ObservedGuest{VMID: vm, TenantID: g.tenant(), Node: g.Node, PVEVMID: g.VMID, Status: g.Status})
	}
	return o, nil
}

// inventory is the cluster's nodes with their capacity and its templates.
func (a *Agent) inventory(ctx context.Context, p *pve) (protocol.Inventory, error) {
	nodes, err := p.c.Nodes(ctx)
	if err != nil {
		return protocol.Inventory{}, err
	}
	all, err := p.guests(ctx)
	if err != nil {
		return protocol.Inventory{}, err
	}
	inv := protocol.Inventory{ClusterID: p.id, Nodes: []protocol.Node{}, Templates: []protocol.Template{}, ObservedAt: time.Now().UTC()}
	for _, n := range nodes {
		if n == nil {
			continue
		}
		inv.Nodes = append(inv.Nodes, protocol.Node{
			Name: n.Node, Online: n.Status == "online", Cores: n.MaxCPU,
			MemoryMB: int64(n.MaxMem >> 20), FreeMemoryMB: int64((n.MaxMem - min(n.Mem, n.MaxMem)) >> 20),
			DiskGB: int64(n.MaxDisk >> 30), FreeDiskGB: int64((n.MaxDisk - min(n.Disk, n.MaxDisk)) >> 30),
		})
	}
	for _, g := range all {
		if !g.Template {
			continue
		}
		t := protocol.Template{Name: g.Name, Kind: g.Kind, Node: g.Node, PVEVMID: g.VMID}
		if cfg, err := p.config(ctx, g); err == nil {
			t.OS = stringOf(cfg["ostype"])
		} else {
			a.log.Warn("template config", "cluster", p.name, "vmid", g.VMID, "err", err)
		}
		inv.Templates = append(inv.Templates, t)
	}
	return inv, nil
}

func (a *Agent) publishObservation(ctx context.Context, p *pve) bool {
	o, err := a.observe(ctx, p)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("reconcile: observe guests", "cluster_id", p.id, "cluster", p.name, "err", err)
		}
		return false
	}
	msg, err := protocol.NewObservationMsg(o)
	if err == nil {
		_, err = a.cfg.JS.PublishMsg(ctx, msg)
	}
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("reconcile: publish observation", "cluster_id", p.id, "err", err)
		}
		return false
	}
	return true
}

func (a *Agent) publishInventory(ctx context.Context, p *pve) bool {
	inv, err := a.inventory(ctx, p)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("reconcile: inventory", "cluster_id", p.id, "cluster", p.name, "err", err)
		}
		return false
	}
	msg, err := protocol.NewInventoryMsg(inv)
	if err == nil {
		_, err = a.cfg.JS.PublishMsg(ctx, msg)
	}
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("reconcile: publish inventory", "cluster_id", p.id, "err", err)
		}
		return false
	}
	return true
}
