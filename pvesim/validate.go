package pvesim

import (
	"maps"
	"slices"
	"strings"

	"github.com/accountdb/accountdb/pvesim/internal/pveschema"
)

// pveRoutes is Proxmox VE 8.2's own schema for every route pvesim serves
// (generated into internal/pveschema/schema.json). Every request is
// validated against it before a handler runs, so the simulator refuses
// exactly what a real node refuses, with the same 400 and messages.
var pveRoutes = pveschema.MustLoad().Index()

// Request is one API request as the simulator received it, for tests
// that check what a client sends (see Simulator.Requests).
type Request struct {
	Method string
	// Path is the Proxmox route template, e.g. "/nodes/{node}/qemu/{vmid}/status/start".
	Path string
	// Params are the names of the parameters sent, path parameters included, sorted.
	Params []string
	// Errors are the schema violations Proxmox would answer 400 for; nil
	// when the request is valid against Proxmox's schema.
	Errors map[string]string
	// Unsimulated names valid Proxmox parameters the simulator refused
	// because it does not implement what they ask for.
	Unsimulated []string
}

// Key is "METHOD /route/template".
func (q Request) Key() string { return q.Method + " " + q.Path }

// Requests returns every authenticated request received so far, in order.
func (s *Simulator) Requests() []Request {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return slices.Clone(s.requests)
}

func (s *Simulator) record(q Request) {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	s.requests = append(s.requests, q)
}

// pvePathParams maps the router's path wildcards to Proxmox's names.
var pvePathParams = map[string]string{"node": "node", "vmid": "vmid", "snap": "snapname", "upid": "upid", "pool": "poolid",
	"storage": "storage", "volume": "volume", "action": ""}

// pveTemplate spells a router path the way Proxmox's schema does.
func pveTemplate(path string) string {
	for from, to := range pvePathParams {
		if to != "" && to != from {
			path = strings.ReplaceAll(path, "{"+from+"}", "{"+to+"}")
		}
	}
	return path
}

// unsimulated lists parameters that are valid in Proxmox but ask for
// something pvesim does not do. Accepting and ignoring them would let a
// client believe it worked (a "restore" that yields an empty guest), so
// they are refused like any invalid parameter.
var unsimulated = map[string]map[string]string{
	"POST /nodes/{node}/qemu": {
		"live-restore": "live restore is not simulated",
		"bwlimit":      "bandwidth limits are not simulated",
		"cicustom":     noCICustom, "citype": noCIType,
	},
	"PUT /nodes/{node}/qemu/{vmid}/config":    {"cicustom": noCICustom, "citype": noCIType},
	"POST /nodes/{node}/qemu/{vmid}/config":   {"cicustom": noCICustom, "citype": noCIType},
	"POST /nodes/{node}/lxc":                  {"bwlimit": "bandwidth limits are not simulated"},
	"GET /nodes/{node}/qemu/{vmid}/config":    {"snapshot": "use GET .../snapshot/{snapname}/config"},
	"GET /nodes/{node}/lxc/{vmid}/config":     {"snapshot": "use GET .../snapshot/{snapname}/config"},
	"POST /nodes/{node}/qemu/{vmid}/clone":    {"format": "disk formats are not simulated (every volume is raw)"},
	"POST /nodes/{node}/qemu/{vmid}/template": {"disk": "converting a single disk to a base volume is not simulated"},
	"POST /nodes/{node}/qemu/{vmid}/status/start": {
		"migratedfrom": "migration is not simulated", "migration_network": "migration is not simulated",
		"migration_type": "migration is not simulated", "stateuri": "migration is not simulated",
		"targetstorage": "migration is not simulated",
	},
	"POST /nodes/{node}/qemu/{vmid}/status/stop": {
		"migratedfrom":      "migration is not simulated",
		"overrule-shutdown": "aborting running shutdown tasks is not simulated",
	},
	"POST /nodes/{node}/lxc/{vmid}/status/stop": {"overrule-shutdown": "aborting running shutdown tasks is not simulated"},
	"GET /nodes/{node}/tasks": {
		"errors": "task list filters are not simulated", "limit": "task list filters are not simulated",
		"since": "task list filters are not simulated", "source": "task list filters are not simulated",
		"start": "task list filters are not simulated", "statusfilter": "task list filters are not simulated",
		"typefilter": "task list filters are not simulated", "until": "task list filters are not simulated",
		"userfilter": "task list filters are not simulated", "vmid": "task list filters are not simulated",
	},
	"GET /nodes/{node}/tasks/{upid}/log": {"download": "downloading task logs is not simulated"},
	"PUT /pools":                         {"storage": "storages in pools are not simulated"},
	"PUT /pools/{poolid}":                {"storage": "storages in pools are not simulated"},
	"GET /nodes/{node}/storage": {
		"format": "storage format lists are not simulated", "target": "migration targets are not simulated",
	},
	"POST /nodes/{node}/vzdump": vzdumpUnsimulated(),
	"POST /access/ticket": {
		"otp": "two-factor authentication is not simulated", "tfa-challenge": "two-factor authentication is not simulated",
	},
}

// vzdumpUnsimulated refuses every vzdump option but the simulated ones.
func vzdumpUnsimulated() map[string]string {
	out := map[string]string{}
	for _, name := range pveRoutes["POST /nodes/{node}/vzdump"].ParamNames() {
		if !vzdumpSimulated[name] {
			out[name] = "only one guest's backup with mode, storage, compress, notes-template and protected is simulated"
		}
	}
	return out
}

const (
	noCICustom = "custom cloud-init snippets are not simulated"
	noCIType   = "cloud-init drives are always nocloud (configdrive2 and opennebula are not simulated)"
)

// Unsimulated reports the Proxmox parameters of a route (key as in
// Request.Key) that pvesim refuses because it does not implement them.
func Unsimulated(key string) map[string]string { return maps.Clone(unsimulated[key]) }

// checkRequest validates a request against Proxmox's schema and records
// it. It returns the error to answer with, or nil to run the handler.
func (s *Simulator) checkRequest(c *call, template string) error {
	path := pveTemplate(template)
	if a := c.r.PathValue("action"); a != "" {
		path = strings.ReplaceAll(path, "{action}", a)
	}
	route := pveRoutes[c.r.Method+" "+path]
	if route == nil {
		return unknownMethod(c.r.Method, strings.TrimPrefix(c.r.URL.Path, apiPrefix))
	}
	all := maps.Clone(map[string]string(c.p))
	for wildcard, name := range pvePathParams {
		if v := c.r.PathValue(wildcard); v != "" && name != "" {
			all[name] = v
		}
	}
	q := Request{Method: c.r.Method, Path: path, Params: slices.Sorted(maps.Keys(all)), Errors: route.Validate(all)}
	if q.Errors == nil {
		refuse := map[string]string{}
		for name, why := range unsimulated[route.Key()] {
			if _, ok := all[name]; ok {
				refuse[name] = "not implemented by pvesim: " + why
				q.Unsimulated = append(q.Unsimulated, name)
			}
		}
		slices.Sort(q.Unsimulated)
		s.record(q)
		if len(refuse) > 0 {
			return paramErr(refuse)
		}
		return nil
	}
	s.record(q)
	return paramErr(q.Errors)
}
