package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/luthermonson/go-proxmox"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
)

// locate finds the guest of an AccountDB VM by its tag on every registered
// cluster. No guest and no error means it is on none of them; a cluster
// that cannot be asked makes that conclusion impossible, so it is an error.
//
// It asks the clusters' guest indexes first (guestindex.go); a guest found
// there is confirmed on Proxmox by one GET of its status, which also
// carries its tags (the guest's Live status is then set). A miss, or a hit
// Proxmox denies (the guest was deleted, moved or re-tagged by hand), falls
// back to listing every cluster, which also refreshes the indexes.
func (a *Agent) locate(ctx context.Context, vm uuid.UUID) (*pve, *guest, error) {
	tag := protocol.VMTag(vm)
	for _, c := range a.registry.all() {
		if c.err != nil {
			continue
		}
		if g, ok := c.pve.index.lookup(vm); ok {
			if st, err := c.pve.confirm(ctx, g, tag); err == nil && st != "" {
				g.Live = st
				return c.pve, &g, nil
			}
			break
		}
	}
	var errs []error
	for _, c := range a.registry.all() {
		if c.err != nil {
			errs = append(errs, c.err)
			continue
		}
		all, err := c.pve.guests(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", c.Name, err))
			continue
		}
		if g := findTagged(all, tag); g != nil {
			return c.pve, g, nil
		}
	}
	return nil, nil, errors.Join(errs...)
}

// errNoGuest is a VM whose guest is on no registered cluster.
var errNoGuest = errors.New("no guest tagged")

// locateFor is locate for a request on an existing VM: a guest on no
// cluster is errNoGuest, and r is told where the guest found is.
func (a *Agent) locateFor(ctx context.Context, vm uuid.UUID, r *protocol.Result) (*pve, *guest, error) {
	p, g, err := a.locate(ctx, vm)
	if err != nil {
		return nil, nil, err
	}
	if g == nil {
		return nil, nil, fmt.Errorf("%w %s on any registered cluster", errNoGuest, protocol.VMTag(vm))
	}
	r.ClusterID, r.Node, r.PVEVMID = p.id, g.Node, g.VMID
	return p, g, nil
}

// findTagged is the guest (not a template) in all carrying tag, or nil.
func findTagged(all []guest, tag string) *guest {
	for _, g := range all {
		if !g.Template && g.hasTag(tag) {
			return &g
		}
	}
	return nil
}

// onGuest is the operation that runs op on the VM's guest. When goneIsDone
// (delete), a guest on no cluster, or gone by the time its status is read,
// leaves nothing to do.
func onGuest(op guestOp, goneIsDone bool) operation {
	return bodied(func(a *Agent, ctx context.Context, req request, e *domain.VMActionRequested, r *protocol.Result) error {
		return a.act(ctx, req, e.Action, op, goneIsDone, r)
	})
}

// act finds the VM's guest and its status and runs op on it, retrying
// transient failures.
func (a *Agent) act(ctx context.Context, req request, action string, op guestOp, goneIsDone bool, r *protocol.Result) error {
	return a.retry(ctx, action, req.VMID, func(ctx context.Context) error {
		p, g, err := a.locateFor(ctx, req.VMID, r)
		if err != nil {
			if goneIsDone && errors.Is(err, errNoGuest) {
				return nil
			}
			return err
		}
		st, err := g.Live, error(nil)
		if st == "" {
			st, err = p.status(ctx, *g)
		}
		if err != nil {
			if goneIsDone && notFound(err) {
				return nil
			}
			return err
		}
		upid, err := op(a, ctx, p, *g, st)
		if upid != "" {
			r.TaskID = upid
		}
		return err
	})
}

// destroy stops a running guest, then deletes it with its disks.
func (a *Agent) destroy(ctx context.Context, p *pve, g guest, st string) (string, error) {
	if st != "stopped" {
		if _, err := a.power(ctx, p, g, st, stopGuest); err != nil {
			return "", fmt.Errorf("stop before delete: %w", err)
		}
	}
	upid, err := p.task(ctx, g,
		func(ct *proxmox.Container) (*proxmox.Task, error) {
			return ct.Delete(ctx, &proxmox.ContainerDeleteOptions{Purge: true, DestroyUnreferencedDisks: true})
		},
		func(vm *proxmox.VirtualMachine) (*proxmox.Task, error) {
			return vm.Delete(ctx, &proxmox.VirtualMachineDeleteOptions{Purge: true, DestroyUnreferencedDisks: true})
		})
	if err == nil || notFound(err) {
		p.index.remove(g.VMID)
		return upid, nil
	}
	return upid, err
}

// resize sets cores and memory and grows the disk to the requested size.
func (a *Agent) resize(ctx context.Context, req request, e *domain.VMResizeRequested, r *protocol.Result) error {
	spec := e.Spec
	return a.retry(ctx, domain.ActionResize, req.VMID, func(ctx context.Context) error {
		p, g, err := a.locateFor(ctx, req.VMID, r)
		if err != nil {
			return err
		}
		upid, err := a.converge(ctx, p, *g, spec, nil, false)
		if upid != "" {
			r.TaskID = upid
		}
		if err != nil {
			return err
		}
		cfg, err := p.config(ctx, *g)
		if err != nil {
			return err
		}
		_, disk := diskOf(g.Kind, cfg)
		r.Cores, r.MemoryMB, r.DiskGB = intOf(cfg["cores"], 1), memoryOf(cfg["memory"]), disk
		return nil
	})
}

// snapshot takes a snapshot, unless one of that name exists already.
func (a *Agent) snapshot(ctx context.Context, req request, e *domain.VMSnapshotRequested, r *protocol.Result) error {
	name := e.Name
	return a.retry(ctx, domain.ActionSnapshot, req.VMID, func(ctx context.Context) error {
		p, g, err := a.locateFor(ctx, req.VMID, r)
		if err != nil {
			return err
		}
		names, err := p.snapshots(ctx, *g)
		if err != nil {
			return err
		}
		if !slices.Contains(names, name) {
			upid, err := p.task(ctx, *g,
				func(ct *proxmox.Container) (*proxmox.Task, error) { return ct.NewSnapshot(ctx, name) },
				func(vm *proxmox.VirtualMachine) (*proxmox.Task, error) { return vm.NewSnapshot(ctx, name) })
			if err != nil {
				return err
			}
			r.TaskID = upid
		}
		r.Snapshot = name
		return nil
	})
}
