package agent

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	proxmox "github.com/luthermonson/go-proxmox"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
)

// Containers come from two kinds of template: a CT template guest, which is
// cloned, and an OS template (a vztmpl volume such as
// local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst), from which Proxmox
// creates a container. Only the second takes root's SSH keys and password
// (ssh-public-keys and password exist on POST /nodes/{node}/lxc, not on the
// clone or config calls), so cloud-init keys reach containers made from OS
// templates.

// osTemplateName is the template name an OS template is offered under:
// its file name up to the version ("debian-12-standard").
func osTemplateName(volid string) string {
	_, file, _ := strings.Cut(volid, "/")
	name, _, _ := strings.Cut(file, "_")
	return name
}

// osTemplates lists the cluster's container OS templates, one per name
// (the first volume found), from the storages with vztmpl content of the
// online nodes.
func (p *pve) osTemplates(ctx context.Context, nodes []string) ([]protocol.Template, error) {
	seen := map[string]bool{}
	var out []protocol.Template
	for _, node := range nodes {
		var storages []struct {
			Storage string `json:"storage"`
		}
		if err := p.c.Get(ctx, "/nodes/"+url.PathEscape(node)+"/storage?content=vztmpl", &storages); err != nil {
			return nil, fmt.Errorf("storages of %s: %w", node, err)
		}
		for _, st := range storages {
			var vols []struct {
				Volid string `json:"volid"`
			}
			path := "/nodes/" + url.PathEscape(node) + "/storage/" + url.PathEscape(st.Storage) + "/content?content=vztmpl"
			if err := p.c.Get(ctx, path, &vols); err != nil {
				return nil, fmt.Errorf("templates on %s of %s: %w", st.Storage, node, err)
			}
			for _, v := range vols {
				name := osTemplateName(v.Volid)
				if name == "" || seen[name] {
					continue
				}
				seen[name] = true
				os, _, _ := strings.Cut(name, "-")
				out = append(out, protocol.Template{Name: name, Kind: kindLXC, OS: os, OSTemplate: v.Volid})
			}
		}
	}
	slices.SortFunc(out, func(a, b protocol.Template) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// createFromOSTemplate creates the container of req on node from the OS
// template volid, with root's keys and password from ci, under prefer (if
// not 0 and free) or a random free vmid. The rest (size, network,
// hostname, DNS) is build's, as for a clone.
func (a *Agent) createFromOSTemplate(ctx context.Context, p *pve, volid, node string, req request, e *domain.VMCreateRequested,
	used vmidSet, prefer int) (*guest, string, error) {
	params := map[string]any{
		"ostemplate":   volid,
		"hostname":     e.Name,
		"description":  description(req),
		"rootfs":       "local-lvm:" + strconv.Itoa(e.Spec.DiskGB),
		"cores":        e.Spec.Cores,
		"memory":       e.Spec.MemoryMB,
		"unprivileged": 1,
		"net0":         "name=eth0,bridge=vmbr0,ip=dhcp",
	}
	if ci := e.CloudInit; ci != nil {
		if len(ci.SSHKeys) > 0 {
			params["ssh-public-keys"] = strings.Join(ci.SSHKeys, "\n")
		}
		if ci.PasswordHash != "" {
			params["password"] = ci.PasswordHash // pve-container takes a crypt hash as it is
		}
	}
	for range 20 {
		vmid := a.randomVMID(used)
		if prefer != 0 && !used.has(prefer) {
			vmid = prefer
		}
		used.add(vmid)
		params["vmid"] = vmid
		var upid proxmox.UPID
		if err := p.c.Post(ctx, "/nodes/"+url.PathEscape(node)+"/lxc", params, &upid); err != nil {
			if strings.Contains(err.Error(), "already exists") {
				continue
			}
			return nil, "", fmt.Errorf("create from %s: %w", volid, err)
		}
		g := &guest{Kind: kindLXC, VMID: vmid, Node: node, Name: e.Name, Status: "stopped"}
		p.index.put(*g)
		if err := p.wait(ctx, proxmox.NewTask(upid, p.c)); err != nil {
			return nil, string(upid), err
		}
		return g, string(upid), nil
	}
	return nil, "", fmt.Errorf("no free vmid found in %d-%d", a.cfg.VMIDMin, a.cfg.VMIDMax)
}

// placeFromOSTemplate creates the container from the OS template named
// e.Template on the first of nodes that has it and room for it.
func (a *Agent) placeFromOSTemplate(ctx context.Context, p *pve, nodes []string, req request, e *domain.VMCreateRequested,
	used vmidSet, prefer int) (*guest, string, error) {
	var last error
	for _, node := range nodes {
		tpls, err := p.osTemplates(ctx, []string{node})
		if err != nil {
			return nil, "", err
		}
		i := slices.IndexFunc(tpls, func(t protocol.Template) bool { return t.Name == e.Template })
		if i < 0 {
			last = fmt.Errorf("OS template %q is not on node %s", e.Template, node)
			continue
		}
		g, upid, err := a.createFromOSTemplate(ctx, p, tpls[i].OSTemplate, node, req, e, used, prefer)
		if err == nil {
			a.log.Info("container created from an OS template", "vm_id", req.VMID, "cluster", p.name, "node", node, "vmid", g.VMID, "ostemplate", tpls[i].OSTemplate)
			p.nodes.placedOn(node, e.Spec.MemoryMB)
			return g, upid, nil
		}
		if !capacityError(err) {
			p.nodes.forget()
			return nil, "", err
		}
		last = err
	}
	if last == nil {
		last = fmt.Errorf("template %q (lxc) does not exist on cluster %s", e.Template, p.name)
	}
	return nil, "", last
}
