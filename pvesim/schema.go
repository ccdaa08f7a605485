package pvesim

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/accountdb/accountdb/pvesim/internal/pveschema"
)

var allocSpecRe = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9\-_.]*):(\d+(?:\.\d+)?)(,.*)?$`)

// configRoutes are the routes whose parameters, minus configMetaKeys, are
// a guest's config keys in Proxmox's schema.
var configRoutes = map[guestKind]*pveschema.Route{
	kindQemu: pveRoutes["PUT /nodes/{node}/qemu/{vmid}/config"],
	kindLXC:  pveRoutes["PUT /nodes/{node}/lxc/{vmid}/config"],
}

func isConfigKey(kind guestKind, k string) bool {
	if configMetaKeys[k] {
		return false
	}
	_, ok := configRoutes[kind].Lookup(k)
	return ok
}

// validateGuestConfig returns the config keys to set, normalised the way
// PVE writes them. The request has already passed Proxmox's schema
// (checkRequest); what is left are checks against the simulator's state.
// Keys in extra are endpoint parameters that are not config.
func (s *Simulator) validateGuestConfig(kind guestKind, v *validator, extra map[string]bool) map[string]string {
	set := map[string]string{}
	for k, val := range v.p {
		if extra[k] {
			continue
		}
		if !isConfigKey(kind, k) {
			v.fail(k, pveschema.MsgNotDefined)
			continue
		}
		switch {
		case k == "tags":
			if norm, ok := v.tags(k); ok {
				set[k] = norm
			}
		case k == "memory" && kind == kindQemu:
			set[k] = strings.TrimPrefix(val, "current=")
		default:
			set[k] = val
		}
	}
	for k, val := range set {
		if isDiskKeyFor(kind, k) && isAllocSpec(val) {
			storage := allocSpecRe.FindStringSubmatch(val)[1]
			if storage != "local-lvm" && storage != "local" {
				v.fail(k, fmt.Sprintf("storage '%s' does not exist", storage))
			}
		}
	}
	return set
}

func isDiskKeyFor(kind guestKind, k string) bool {
	g := guest{kind: kind, conf: map[string]string{}}
	return g.isDiskKey(k)
}

func isAllocSpec(v string) bool { return allocSpecRe.MatchString(v) }

// allocVolume turns "local-lvm:32,opts" into PVE's stored drive string
// "local-lvm:vm-100-disk-0,opts,size=32G", picking the next free disk
// index among the volumes already referenced by conf.
func allocVolume(kind guestKind, vmid int, conf map[string]string, spec string) (string, error) {
	m := allocSpecRe.FindStringSubmatch(spec)
	if m == nil {
		return spec, nil
	}
	gb, err := strconv.ParseFloat(m[2], 64)
	if err != nil || gb <= 0 {
		return "", errf("invalid disk size '%s'", m[2])
	}
	idx := 0
	for {
		name := fmt.Sprintf("vm-%d-disk-%d", vmid, idx)
		used := false
		for _, v := range conf {
			if strings.Contains(v, name+",") || strings.HasSuffix(v, name) {
				used = true
				break
			}
		}
		if !used {
			break
		}
		idx++
	}
	opts := strings.TrimPrefix(m[3], ",")
	vol := fmt.Sprintf("%s:vm-%d-disk-%d", m[1], vmid, idx)
	if kind == kindQemu && m[1] == "local" {
		vol = fmt.Sprintf("local:%d/vm-%d-disk-%d.raw", vmid, vmid, idx)
	}
	if opts != "" {
		vol += "," + opts
	}
	return setDiskSize(vol, uint64(gb*float64(1<<30))), nil
}

var netKeyRe = regexp.MustCompile(`^net\d+$`)
