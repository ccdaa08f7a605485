package agent

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/accountdb/accountdb/agent/protocol"
)

// reconcileLoop publishes the cluster's inventory as soon as it is learned,
// then its observation and inventory every ReconcileInterval until ctx ends;
// from every listing it watches the guests that booted (guestwatch.go).
//
// Its listings feed the cluster's guest index (guestindex.go), which it
// first cools: this agent is starting to lead, and another one may have
// changed the cluster since this one last listed it.
func (a *Agent) reconcileLoop(ctx context.Context, p *pve) {
	p.index.cool()
	boots := newBootWatch(a.cfg.Concurrency)
	defer boots.wg.Wait() // the watchers follow ctx
	start := time.Now()
	if all, ok := a.listGuests(ctx, p, "reconcile: inventory"); ok {
		listed := time.Since(start)
		a.watchBooted(ctx, boots, all)
		ok = a.publishInventory(ctx, p, all)
		a.reportReconcile(p, "inventory", all, listed, time.Since(start), ok)
	}
	t := time.NewTicker(a.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			outcome := "ok"
			if !a.reconcile(ctx, p, boots) {
				outcome = "error"
			}
			a.metrics.reconciles.WithLabelValues(outcome).Inc()
		}
	}
}

// reconcile publishes the cluster's observation, then its inventory, both
// from one listing of its guests.
func (a *Agent) reconcile(ctx context.Context, p *pve, boots *bootWatch) bool {
	start := time.Now()
	all, ok := a.listGuests(ctx, p, "reconcile: observe guests")
	if !ok {
		return false
	}
	listed := time.Since(start)
	a.watchBooted(ctx, boots, all)
	ok = a.changes.publishListing(start, func(changing func(uuid.UUID) bool) bool {
		return a.publishObservation(ctx, p, all, changing)
	}) && a.publishInventory(ctx, p, all)
	a.reportReconcile(p, "tick", all, listed, time.Since(start), ok)
	return ok
}

// reportReconcile tells what one pass over a cluster cost: how long it
// took (listing the guests, then in all), and how many guests it saw, of
// which how many AccountDB's. It is the figure to watch as a cluster grows:
// a pass lists every guest, the operations in between list none.
func (a *Agent) reportReconcile(p *pve, pass string, all []guest, listed, took time.Duration, ok bool) {
	tagged := 0
	for _, g := range all {
		if _, ok := g.accountDBVM(); ok && !g.Template {
			tagged++
		}
	}
	a.metrics.reconcileSeconds.WithLabelValues(p.name).Observe(took.Seconds())
	a.metrics.reconcileGuests.WithLabelValues(p.name).Set(float64(len(all)))
	a.log.Info("reconciled", "cluster_id", p.id, "cluster", p.name, "pass", pass, "ok", ok, "guests", len(all),
		"accountdb_guests", tagged, "list_ms", listed.Milliseconds(), "took_ms", took.Milliseconds())
}

// listGuests lists the cluster's guests; a failure is logged as what.
func (a *Agent) listGuests(ctx context.Context, p *pve, what string) ([]guest, bool) {
	all, err := p.guests(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn(what, "cluster_id", p.id, "cluster", p.name, "err", err)
		}
		return nil, false
	}
	return all, true
}

// observation is every AccountDB guest among all, p's guests: those tagged
// with a VM id, marked changing when changing says the agent was working on
// their VM during the listing.
func observation(p *pve, all []guest, changing func(uuid.UUID) bool) protocol.Observation {
	o := protocol.Observation{ClusterID: p.id, Guests: []protocol.ObservedGuest{}, ObservedAt: time.Now().UTC()}
	for _, g := range all {
		vm, ok := g.accountDBVM()
		if !ok || g.Template {
			continue
		}
		o.Guests = append(o.Guests, protocol.ObservedGuest{VMID: vm, TenantID: g.tenant(), Node: g.Node, PVEVMID: g.VMID, Status: g.Status,
			UptimeSeconds: int64(g.Uptime / time.Second), Changing: changing(vm)})
	}
	return o
}

// inventory is the cluster's nodes with their capacity and its templates,
// found among all, its guests.
func (a *Agent) inventory(ctx context.Context, p *pve, all []guest) (protocol.Inventory, error) {
	nodes, err := p.c.Nodes(ctx)
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
	var online []string
	for _, n := range inv.Nodes {
		if n.Online {
			online = append(online, n.Name)
		}
	}
	osTemplates, err := p.osTemplates(ctx, online)
	if err != nil {
		a.log.Warn("container OS templates", "cluster", p.name, "err", err)
	}
	inv.Templates = append(inv.Templates, osTemplates...)
	return inv, nil
}

// publishObservation publishes the observation of all, within the time one
// attempt to publish a result has: results wait while it is published
// (guestChanges.publishListing), and a listing missed is taken again at
// the next tick.
func (a *Agent) publishObservation(ctx context.Context, p *pve, all []guest, changing func(uuid.UUID) bool) bool {
	ctx, cancel := context.WithTimeout(ctx, resultPublishTimeout)
	defer cancel()
	msg, err := protocol.NewObservationMsg(observation(p, all, changing))
	return a.publishReconciled(ctx, p, "observation", msg, err)
}

func (a *Agent) publishInventory(ctx context.Context, p *pve, all []guest) bool {
	inv, err := a.inventory(ctx, p, all)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("reconcile: inventory", "cluster_id", p.id, "cluster", p.name, "err", err)
		}
		return false
	}
	msg, err := protocol.NewInventoryMsg(inv)
	return a.publishReconciled(ctx, p, "inventory", msg, err)
}

// publishReconciled publishes msg, what the reconciliation built (err: it
// could not be encoded).
func (a *Agent) publishReconciled(ctx context.Context, p *pve, what string, msg *nats.Msg, err error) bool {
	if err == nil {
		_, err = a.cfg.JS.PublishMsg(ctx, msg)
	}
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("reconcile: publish "+what, "cluster_id", p.id, "err", err)
		}
		return false
	}
	return true
}
