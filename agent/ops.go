package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/luthermonson/go-proxmox"

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
}

// execute carries out req. It returns the result to publish, success or a
// permanent failure; a non-nil error means the operation was abandoned
// (ctx ended) and no result may be published.
func (a *Agent) execute(ctx context.Context, req request) (protocol.Result, error) {
	r := protocol.Result{
		RequestEventID: req.EventID, CorrelationID: req.CorrelationID,
		TenantID: req.TenantID, VMID: req.VMID, Action: req.Action,
	}
	var err error
	switch e := req.Body.(type) {
	case *domain.VMCreateRequested:
		err = a.create(ctx, req, e, &r)
	case *domain.VMActionRequested:
		err = a.act(ctx, req, e.Action, &r)
	case *domain.VMResizeRequested:
		err = a.resize(ctx, req, e.Spec, &r)
	case *domain.VMSnapshotRequested:
		err = a.snapshot(ctx, req, e.Name, &r)
	default:
		err = fmt.Errorf("unsupported request %T", req.Body)
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

// create provisions the VM, or finishes one a previous attempt (perhaps by
// an agent that crashed) started: it first looks for a guest carrying the
// VM's tag, or (a clone not yet tagged) its name and a description naming
// the VM.
func (a *Agent) create(ctx context.Context, req request, e *domain.VMCreateRequested, r *protocol.Result) error {
	p, err := a.registry.get(ctx, e.ClusterID, a.cfg.ClusterWait)
	if err != nil {
		return err
	}
	r.ClusterID = e.ClusterID
	tags := []string{protocol.VMTag(req.VMID), protocol.TenantTag(req.TenantID)}
	return a.retry(ctx, domain.ActionCreate, req.VMID, func(ctx context.Context) error {
		all, err := p.guests(ctx)
		if err != nil {
			return err
		}
		g, err := a.findCreated(ctx, p, all, req.VMID, e.Name)
		if err != nil {
			return err
		}
		if g == nil {
			var upid string
			if g, upid, err = a.place(ctx, p, all, req, e); err != nil {
				return err
			}
			r.TaskID = upid
		}
		r.Node, r.PVEVMID = g.Node, g.VMID
		upid, err := a.converge(ctx, p, *g, e.Spec, tags, true)
		if err != nil {
			return err
		}
		if r.TaskID == "" {
			r.TaskID = upid
		}
		return nil
	})
}

// description is written on every clone, in the same call that creates it,
// so a guest whose tags were not set yet can still be recognised.
func description(req request) string {
	return "Managed by AccountDB; keep the tags " + protocol.VMTag(req.VMID) + " and " + protocol.TenantTag(req.TenantID) + "."
}

// findCreated finds the guest of an AccountDB VM among all, p's guests: by
// its tag, or an untagged guest with its name whose description names it.
func (a *Agent) findCreated(ctx context.Context, p *pve, all []guest, vm uuid.UUID, name string) (*guest, error) {
	tag := protocol.VMTag(vm)
	if g := findTagged(all, tag); g != nil {
		return g, nil
	}
	for _, g := range all {
		if g.Template || g.Name != name {
			continue
		}
		if _, tagged := g.accountDBVM(); tagged {
			continue
		}
		cfg, err := p.config(ctx, g)
		if err != nil {
			if notFound(err) {
				continue
			}
			return nil, err
		}
		if d, _ := cfg["description"].(string); strings.Contains(d, tag) {
			return &g, nil
		}
	}
	return nil, nil
}

// place clones the template onto the best node that takes it: the
// requested node, or the online nodes by decreasing free memory, moving on
// to the next when a node turns out to lack capacity. all is p's guests.
func (a *Agent) place(ctx context.Context, p *pve, all []guest, req request, e *domain.VMCreateRequested) (*guest, string, error) {
	var templates []guest
	used := map[int]bool{}
	for _, g := range all {
		used[g.VMID] = true
		if g.Template && g.Name == e.Template && g.Kind == string(e.Kind) {
			templates = append(templates, g)
		}
	}
	if len(templates) == 0 {
		return nil, "", fmt.Errorf("template %q (%s) does not exist on cluster %s", e.Template, e.Kind, p.name)
	}
	nodes := []string{e.Node}
	if e.Node == "" {
		var err error
		if nodes, err = a.candidates(ctx, p, e.Spec.MemoryMB); err != nil {
			return nil, "", err
		}
	}
	var last error
	for _, node := range nodes {
		src := templates[0]
		for _, t := range templates {
			if t.Node == node {
				src = t
			}
		}
		g, upid, err := a.clone(ctx, p, src, node, req, e.Name, used)
		if err == nil {
			a.log.Info("guest cloned", "vm_id", req.VMID, "cluster", p.name, "node", node, "vmid", g.VMID, "template", src.Name)
			return g, upid, nil
		}
		if !capacityError(err) {
			return nil, "", err
		}
		a.log.Warn("node lacks capacity, trying the next", "vm_id", req.VMID, "cluster", p.name, "node", node, "err", err)
		last = err
	}
	return nil, "", last
}

// clone makes a full clone of src on node under a random free vmid,
// picking another when PVE says the vmid already exists.
func (a *Agent) clone(ctx context.Context, p *pve, src guest, node string, req request, name string, used map[int]bool) (*guest, string, error) {
	target := ""
	if node != src.Node {
		target = node
	}
	for range 20 {
		vmid := a.randomVMID(used)
		used[vmid] = true
		var (
			t   *proxmox.Task
			err error
		)
		if src.Kind == kindLXC {
			var ct *proxmox.Container
			if ct, err = p.lxc(ctx, src); err != nil {
				return nil, "", err
			}
			_, t, err = ct.Clone(ctx, &proxmox.ContainerCloneOptions{NewID: vmid, Full: true, Hostname: name, Target: target, Description: description(req)})
		} else {
			_, t, err = p.qemu(src).Clone(ctx, &proxmox.VirtualMachineCloneOptions{NewID: vmid, Full: true, Name: name, Target: target, Description: description(req)})
		}
		if err != nil {
			if strings.Contains(err.Error(), "already exists") {
				continue
			}
			return nil, "", fmt.Errorf("clone: %w", err)
		}
		if t == nil {
			return nil, "", errors.New("clone: Proxmox returned no task")
		}
		if err := p.wait(ctx, t); err != nil {
			return nil, string(t.UPID), err
		}
		return &guest{Kind: src.Kind, VMID: vmid, Node: node, Name: name, Status: "stopped"}, string(t.UPID), nil
	}
	return nil, "", fmt.Errorf("no free vmid found in %d-%d", a.cfg.VMIDMin, a.cfg.VMIDMax)
}

func (a *Agent) randomVMID(used map[int]bool) int {
	span := a.cfg.VMIDMax - a.cfg.VMIDMin + 1
	id := a.cfg.VMIDMin + rand.IntN(span)
	for i := 0; i < 16 && used[id]; i++ {
		id = a.cfg.VMIDMin + rand.IntN(span)
	}
	return id
}

// converge brings a guest to spec: cores and memory (and tags, when given)
// by a config update, the disk grown to spec.DiskGB, and started when start
// is set. It returns the UPID of the last task it ran.
func (a *Agent) converge(ctx context.Context, p *pve, g guest, spec domain.VMSpec, tags []string, start bool) (string, error) {
	cfg, err := p.config(ctx, g)
	if err != nil {
		return "", err
	}
	var last string
	opts := map[string]any{}
	if intOf(cfg["cores"], 1) != spec.Cores {
		opts["cores"] = spec.Cores
	}
	if memoryOf(cfg["memory"]) != spec.MemoryMB {
		opts["memory"] = spec.MemoryMB
	}
	if tags != nil {
		cur := protocol.SplitTags(stringOf(cfg["tags"]))
		merged := slices.Clone(cur)
		for _, t := range tags {
			if !slices.Contains(merged, t) {
				merged = append(merged, t)
			}
		}
		if len(merged) != len(cur) {
			slices.Sort(merged)
			opts["tags"] = strings.Join(merged, ";")
		}
	}
	if len(opts) > 0 {
		if last, err = a.setConfig(ctx, p, g, opts); err != nil {
			return last, fmt.Errorf("config: %w", err)
		}
	}
	if spec.DiskGB > 0 {
		key, size := diskOf(g.Kind, cfg)
		if key == "" {
			return last, fmt.Errorf("guest %d has no disk to size", g.VMID)
		}
		if size < spec.DiskGB {
			upid, err := a.resizeDisk(ctx, p, g, key, spec.DiskGB)
			if err != nil {
				return upid, fmt.Errorf("resize %s: %w", key, err)
			}
			last = upid
		}
	}
	if start {
		st, err := p.status(ctx, g)
		if err != nil {
			return last, err
		}
		if st != "running" {
			upid, err := a.power(ctx, p, g, st, domain.ActionStart)
			if err != nil {
				return upid, err
			}
			last = upid
		}
	}
	return last, nil
}

func (a *Agent) setConfig(ctx context.Context, p *pve, g guest, opts map[string]any) (string, error) {
	return p.task(ctx, g,
		func(ct *proxmox.Container) (*proxmox.Task, error) {
			return ct.Config(ctx, configOptions[proxmox.ContainerOption](opts)...)
		},
		func(vm *proxmox.VirtualMachine) (*proxmox.Task, error) {
			return vm.Config(ctx, configOptions[proxmox.VirtualMachineOption](opts)...)
		})
}

// configOptions is opts as go-proxmox options, in key order; containers
// and VMs have option types of the same shape.
func configOptions[O ~struct {
	Name  string
	Value any
}](opts map[string]any) []O {
	o := make([]O, 0, len(opts))
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		o = append(o, O{Name: k, Value: opts[k]})
	}
	return o
}

func (a *Agent) resizeDisk(ctx context.Context, p *pve, g guest, key string, gb int) (string, error) {
	size := strconv.Itoa(gb) + "G"
	return p.task(ctx, g,
		func(ct *proxmox.Container) (*proxmox.Task, error) { return ct.Resize(ctx, key, size) },
		func(vm *proxmox.VirtualMachine) (*proxmox.Task, error) { return vm.ResizeDisk(ctx, key, size) })
}

// power runs a power action on a guest whose current status is st.
func (a *Agent) power(ctx context.Context, p *pve, g guest, st, action string) (string, error) {
	return p.task(ctx, g,
		func(ct *proxmox.Container) (*proxmox.Task, error) {
			shutdown := func(ctx context.Context) (*proxmox.Task, error) { return ct.Shutdown(ctx, false, 120) }
			return powerAction(ctx, ct, shutdown, st, action)
		},
		func(vm *proxmox.VirtualMachine) (*proxmox.Task, error) {
			return powerAction(ctx, vm, vm.Shutdown, st, action)
		})
}

// powerHandle is the power calls go-proxmox's containers and VMs share;
// their Shutdown differs and is passed on its own.
type powerHandle interface {
	Start(context.Context) (*proxmox.Task, error)
	Stop(context.Context) (*proxmox.Task, error)
	Resume(context.Context) (*proxmox.Task, error)
	Reboot(context.Context) (*proxmox.Task, error)
}

// powerAction starts action on h; start resumes a paused guest.
func powerAction(ctx context.Context, h powerHandle, shutdown func(context.Context) (*proxmox.Task, error), st, action string) (*proxmox.Task, error) {
	switch action {
	case domain.ActionStart:
		if st == "paused" {
			return h.Resume(ctx)
		}
		return h.Start(ctx)
	case domain.ActionStop:
		return h.Stop(ctx)
	case domain.ActionShutdown:
		return shutdown(ctx)
	case domain.ActionReboot:
		return h.Reboot(ctx)
	}
	return nil, fmt.Errorf("unknown power action %q", action)
}

// locate finds the guest of an AccountDB VM by its tag on every registered
// cluster. No guest and no error means it is on none of them; a cluster
// that cannot be asked makes that conclusion impossible, so it is an error.
func (a *Agent) locate(ctx context.Context, vm uuid.UUID) (*pve, *guest, error) {
	tag := protocol.VMTag(vm)
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

// act runs start, stop, shutdown, reboot or delete. Each is a no-op when
// the guest is already where the action would take it, so a redelivered
// request succeeds again without touching the guest.
func (a *Agent) act(ctx context.Context, req request, action string, r *protocol.Result) error {
	switch action {
	case domain.ActionStart, domain.ActionStop, domain.ActionShutdown, domain.ActionReboot, domain.ActionDelete:
	default:
		return fmt.Errorf("unknown action %q", action)
	}
	return a.retry(ctx, action, req.VMID, func(ctx context.Context) error {
		p, g, err := a.locateFor(ctx, req.VMID, r)
		if err != nil {
			if action == domain.ActionDelete && errors.Is(err, errNoGuest) {
				return nil
			}
			return err
		}
		st, err := p.status(ctx, *g)
		if err != nil {
			if action == domain.ActionDelete && notFound(err) {
				return nil
			}
			return err
		}
		var upid string
		switch action {
		case domain.ActionStart:
			if st != "running" {
				upid, err = a.power(ctx, p, *g, st, action)
			}
		case domain.ActionStop, domain.ActionShutdown:
			if st != "stopped" {
				upid, err = a.power(ctx, p, *g, st, action)
			}
		case domain.ActionReboot:
			upid, err = a.power(ctx, p, *g, st, action)
		case domain.ActionDelete:
			upid, err = a.destroy(ctx, p, *g, st)
		}
		if upid != "" {
			r.TaskID = upid
		}
		return err
	})
}

// destroy stops a running guest, then deletes it with its disks.
func (a *Agent) destroy(ctx context.Context, p *pve, g guest, st string) (string, error) {
	if st != "stopped" {
		if _, err := a.power(ctx, p, g, st, domain.ActionStop); err != nil {
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
	if notFound(err) {
		return upid, nil
	}
	return upid, err
}

// resize sets cores and memory and grows the disk to spec.
func (a *Agent) resize(ctx context.Context, req request, spec domain.VMSpec, r *protocol.Result) error {
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
func (a *Agent) snapshot(ctx context.Context, req request, name string, r *protocol.Result) error {
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
