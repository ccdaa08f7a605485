package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
)

// cloudInitConfig is the Proxmox config that gives a guest ci, as changes
// to cfg (the guest's config now): keys to set, and keys to delete (settings
// ci no longer has). qemu takes cloud-init's keys (the hostname is the VM's
// name); a container its hostname and DNS (domain.CheckCloudInitKind keeps
// the rest away from containers). The password is already a SHA-512 crypt
// hash, which Proxmox stores as it is. ci may be nil (a guest with only an
// address). With setNet (a guest being built) its network is set too
// (guestNetConfig); a later change of settings leaves the network alone.
func cloudInitConfig(kind string, cfg map[string]any, ci *domain.CloudInit, n *domain.VMNetwork, setNet bool) (map[string]any, []string) {
	set, del := map[string]any{}, []string{}
	if ci != nil {
		want := map[string]string{"nameserver": strings.Join(ci.Nameservers, " "), "searchdomain": ci.SearchDomain}
		if kind == kindLXC {
			want["hostname"] = ci.Hostname
		} else {
			want["name"] = ci.Hostname
			want["ciuser"] = ci.User
			want["sshkeys"] = encodeSSHKeys(ci.SSHKeys)
			if ci.PasswordHash != "" {
				want["cipassword"] = ci.PasswordHash
			}
		}
		if len(ci.Nameservers) == 0 && n != nil && len(n.Nameservers) > 0 {
			delete(want, "nameserver") // the pool's, below
		}
		for _, k := range slices.Sorted(maps.Keys(want)) {
			v, cur := want[k], stringOf(cfg[k])
			switch {
			case v == "" && cur != "" && k != "name" && k != "hostname":
				del = append(del, k)
			case v != "" && (v != cur || k == "cipassword"): // cipassword reads back masked
				set[k] = v
			}
		}
	}
	if setNet {
		for k, v := range guestNetConfig(kind, cfg, n, ci) {
			set[k] = v
		}
	}
	return set, del
}

// encodeSSHKeys is qemu-server's sshkeys: the authorized_keys lines
// percent-encoded as a whole (it URI-unescapes the value; a '+' in base64
// must reach it as %2B and spaces as %20).
func encodeSSHKeys(keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	return strings.ReplaceAll(url.QueryEscape(strings.Join(keys, "\n")), "+", "%20")
}

// hasCloudInitDrive reports whether a qemu config has a cloud-init drive.
func hasCloudInitDrive(cfg map[string]any) bool {
	for k, v := range cfg {
		if qemuDiskKey.MatchString(k) && strings.Contains(stringOf(v), "cloudinit") {
			return true
		}
	}
	return false
}

// errNoCloudInitDrive: the settings could never reach the guest.
var errNoCloudInitDrive = errors.New("the template has no cloud-init drive, so cloud-init settings cannot reach the guest")

// applyCloudInit writes ci into g's config and, when regenerate is set,
// rewrites a qemu guest's cloud-init drive from it (Proxmox also does at
// every start; doing it now makes the drive right before the first boot
// whatever happens next). Setting the same values again changes nothing,
// so a resumed create or rebuild runs it again safely.
//
// n is the guest's address from a pool (nil: DHCP); it is written only
// when building (regenerate), with ci or without.
func (a *Agent) applyCloudInit(ctx context.Context, p *pve, g guest, ci *domain.CloudInit, n *domain.VMNetwork, regenerate bool) (string, error) {
	if ci == nil && (n == nil || !regenerate) {
		return "", nil
	}
	cfg, err := p.config(ctx, g)
	if err != nil {
		return "", err
	}
	if g.Kind == kindQEMU && !hasCloudInitDrive(cfg) {
		return "", errNoCloudInitDrive
	}
	set, del := cloudInitConfig(g.Kind, cfg, ci, n, regenerate)
	if len(del) > 0 {
		set["delete"] = strings.Join(del, ",")
	}
	var upid string
	if len(set) > 0 {
		if upid, err = a.setConfig(ctx, p, g, set); err != nil {
			return upid, fmt.Errorf("cloud-init config: %w", err)
		}
	}
	if regenerate && g.Kind == kindQEMU {
		if err := p.qemu(g).CloudInitRegenerate(ctx); err != nil {
			return upid, fmt.Errorf("regenerate cloud-init drive: %w", err)
		}
	}
	return upid, nil
}

// configure writes changed cloud-init settings to the VM's guest. On a
// running guest Proxmox keeps them pending until its next boot, which then
// regenerates the drive; the drive is left alone here so that Proxmox's
// own pending view (GET …/cloudinit) stays true.
func (a *Agent) configure(ctx context.Context, req request, e *domain.VMCloudInitUpdateRequested, r *protocol.Result) error {
	ci := e.CloudInit
	return a.retry(ctx, domain.ActionConfigure, req.VMID, func(ctx context.Context) error {
		p, g, err := a.locateFor(ctx, req.VMID, r)
		if err != nil {
			return err
		}
		upid, err := a.applyCloudInit(ctx, p, *g, &ci, nil, false)
		if upid != "" {
			r.TaskID = upid
		}
		return err
	})
}
