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

// create provisions the VM, or finishes one a previous attempt (perhaps by
// an agent that crashed) started: it first looks for a guest carrying the
// VM's tag, or (a clone not yet tagged) its name and a description naming
// the VM.
//
// That search lists the cluster, except on the first attempt at a first
// delivery when the cluster's guest index is warm and has no guest of the
// VM: then no earlier attempt can have left one (a guest is only ever made
// by a create, rebuild or restore of its VM, and this is the VM's first),
// and the miss is the answer without a listing whose cost grows with the
// cluster.
func (a *Agent) create(ctx context.Context, req request, e *domain.VMCreateRequested, r *protocol.Result) error {
	p, err := a.registry.get(ctx, e.ClusterID, a.cfg.ClusterWait)
	if err != nil {
		return err
	}
	r.ClusterID = e.ClusterID
	tags := []string{protocol.VMTag(req.VMID), protocol.TenantTag(req.TenantID)}
	attempt := 0
	return a.retry(ctx, domain.ActionCreate, req.VMID, func(ctx context.Context) error {
		attempt++
		var g *guest
		if _, hit := p.index.lookup(req.VMID); hit || attempt > 1 || req.Delivery != 1 || !p.index.isWarm() {
			all, err := p.guests(ctx)
			if err != nil {
				return err
			}
			if g, err = a.findCreated(ctx, p, all, req.VMID, e.Name); err != nil {
				return err
			}
		}
		if g == nil {
			var upid string
			if e.Restore != nil {
				g, upid, err = a.restoreNew(ctx, p, req, e) // ops_restore.go
			} else {
				g, upid, err = a.place(ctx, p, req, e, 0)
			}
			if err != nil {
				return err
			}
			r.TaskID = upid
		}
		r.Node, r.PVEVMID = g.Node, g.VMID
		upid, err := a.build(ctx, p, *g, e.Spec, tags, e.CloudInit, e.Network, nil)
		if err != nil {
			return err
		}
		p.index.put(built(*g, tags))
		if r.TaskID == "" {
			r.TaskID = upid
		}
		return nil
	})
}

// description is written on every clone, in the same call that creates it,
// so a guest whose tags were not set yet can still be recognised.
func description(req request) string {
	return "Managed by AccountDB; keep the tags " + protocol.VMTag(req.VMID) + " and " + protocol.TenantTag(req.TenantID) + ". " + requestMark(req)
}

// requestMark names, in a guest's description, the request that cloned it:
// a resumed rebuild tells the guest it made from the one it replaces.
func requestMark(req request) string { return "Request " + req.EventID.String() + "." }

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

// built is g as build left it: tagged, running.
func built(g guest, tags []string) guest {
	g.Tags, g.Status, g.Live = slices.Clone(tags), "running", ""
	return g
}

// place clones the template onto the best node that takes it: the
// requested node, or the online nodes by decreasing free memory, moving on
// to the next when a node turns out to lack capacity. prefer, if not 0, is
// the vmid to try first. Templates and the vmids in use come from p's
// guest index; a template it does not know is looked for in a listing.
func (a *Agent) place(ctx context.Context, p *pve, req request, e *domain.VMCreateRequested, prefer int) (*guest, string, error) {
	templates := p.index.templates(e.Template, string(e.Kind))
	// A container may come from an OS template instead: a warm index
	// without a CT template of that name is answer enough, since the core
	// only offers templates an inventory (a listing) showed.
	if len(templates) == 0 && !(e.Kind == domain.KindLXC && p.index.isWarm()) {
		if _, err := p.guests(ctx); err != nil {
			return nil, "", err
		}
		templates = p.index.templates(e.Template, string(e.Kind))
	}
	used := p.vmidsInUse()
	nodes := []string{e.Node}
	if e.Node == "" {
		var err error
		if nodes, err = a.candidates(ctx, p, e.Spec.MemoryMB); err != nil {
			return nil, "", err
		}
	}
	if len(templates) == 0 && e.Kind == domain.KindLXC {
		return a.placeFromOSTemplate(ctx, p, nodes, req, e, used, prefer)
	}
	if len(templates) == 0 {
		return nil, "", fmt.Errorf("template %q (%s) does not exist on cluster %s", e.Template, e.Kind, p.name)
	}
	var last error
	for _, node := range nodes {
		src := templates[0]
		for _, t := range templates {
			if t.Node == node {
				src = t
			}
		}
		g, upid, err := a.clone(ctx, p, src, node, req, e.Name, used, prefer)
		if err == nil {
			a.log.Info("guest cloned", "vm_id", req.VMID, "cluster", p.name, "node", node, "vmid", g.VMID, "template", src.Name)
			p.nodes.placedOn(node, e.Spec.MemoryMB)
			return g, upid, nil
		}
		if !capacityError(err) {
			p.nodes.forget()
			return nil, "", err
		}
		a.log.Warn("node lacks capacity, trying the next", "vm_id", req.VMID, "cluster", p.name, "node", node, "err", err)
		last = err
	}
	return nil, "", last
}

// clone makes a full clone of src on node under prefer (if not 0 and
// free) or a random free vmid, picking another when PVE says the vmid
// already exists.
func (a *Agent) clone(ctx context.Context, p *pve, src guest, node string, req request, name string, used vmidSet, prefer int) (*guest, string, error) {
	target := ""
	if node != src.Node {
		target = node
	}
	for range 20 {
		vmid := a.randomVMID(used)
		if prefer != 0 && !used.has(prefer) {
			vmid = prefer
		}
		used.add(vmid)
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
		g := &guest{Kind: src.Kind, VMID: vmid, Node: node, Name: name, Status: "stopped"}
		p.index.put(*g) // its vmid is taken, whatever the task's outcome
		if err := p.wait(ctx, t); err != nil {
			return nil, string(t.UPID), err
		}
		return g, string(t.UPID), nil
	}
	return nil, "", fmt.Errorf("no free vmid found in %d-%d", a.cfg.VMIDMin, a.cfg.VMIDMax)
}

// vmidSet is the vmids a create must not pick: those p's guest index knows
// and those tried already.
type vmidSet struct {
	index *guestIndex
	tried map[int]bool
}

func (p *pve) vmidsInUse() vmidSet { return vmidSet{index: p.index, tried: map[int]bool{}} }

func (s vmidSet) has(vmid int) bool { return s.tried[vmid] || s.index.used(vmid) }
func (s vmidSet) add(vmid int)      { s.tried[vmid] = true }

func (a *Agent) randomVMID(used vmidSet) int {
	span := a.cfg.VMIDMax - a.cfg.VMIDMin + 1
	id := a.cfg.VMIDMin + rand.IntN(span)
	for i := 0; i < 16 && used.has(id); i++ {
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
			upid, err := a.power(ctx, p, g, st, startGuest)
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
