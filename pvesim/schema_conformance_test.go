package pvesim

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/pvesim/internal/pveschema"
)

// The router serves exactly the routes whose schema was generated.
func TestRouterServesExactlyTheSchemaRoutes(t *testing.T) {
	if len(pveRoutes) != len(pveschema.Served()) {
		t.Fatalf("%d schema routes, %d served", len(pveRoutes), len(pveschema.Served()))
	}
	sim := New(Options{})
	for _, key := range pveschema.Served() {
		method, path, _ := strings.Cut(key, " ")
		r := httptest.NewRequest(method, apiPrefix+concretePath(path), nil)
		if _, pattern := sim.mux.Handler(r); pattern == "" {
			t.Errorf("%s: not routed", key)
		}
	}
	// A route Proxmox does not have is 501, even where the router matches.
	q := schemaCall(t, sim, "POST", "/nodes/pve1/lxc/9100/status/reset", nil)
	if q.status != http.StatusNotImplemented {
		t.Fatalf("lxc reset: %d %s", q.status, q.body)
	}
}

// concretePath fills a route template with values that exist in a fresh
// simulator (the default templates 9000 and 9100).
func concretePath(path string) string {
	vmid := "9000"
	if strings.Contains(path, "/lxc") {
		vmid = "9100"
	}
	return strings.NewReplacer("{node}", "pve1", "{vmid}", vmid, "{snapname}", "snap1",
		"{upid}", "UPID:pve1:00001234:00005678:6753A1B2:qmstart:9000:root@pam:", "{poolid}", "pool1",
		"{storage}", "local", "{volume}", url.PathEscape("local:backup/vzdump-qemu-9000-2026_01_01-00_00_00.vma.zst")).Replace(path)
}

// requiredInPractice are parameters the schema calls optional that the
// route's code requires (vzdump needs vmid, all or pool), with a value.
var requiredInPractice = map[string]map[string]string{
	"POST /nodes/{node}/vzdump": {"vmid": "9000"},
}

type schemaAnswer struct {
	status int
	body   string
	errors map[string]string
}

func schemaCall(t *testing.T, sim *Simulator, method, path string, params map[string]string) schemaAnswer {
	t.Helper()
	form := url.Values{}
	for k, v := range params {
		form.Set(k, v)
	}
	target := apiPrefix + path
	var r *http.Request
	if method == "GET" || method == "DELETE" {
		if len(form) > 0 {
			target += "?" + form.Encode()
		}
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r.Header.Set("Authorization", "PVEAPIToken="+DefaultTokenID+"="+DefaultTokenSecret)
	w := httptest.NewRecorder()
	sim.ServeHTTP(w, r)
	ans := schemaAnswer{status: w.Code, body: w.Body.String()}
	var env struct {
		Data   any               `json:"data"`
		Errors map[string]string `json:"errors"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
		t.Fatalf("%s %s: body is not JSON: %q", method, path, ans.body)
	}
	if ans.status == http.StatusBadRequest && (env.Data != nil || len(env.Errors) == 0 || !strings.Contains(ans.body, `"data":null`)) {
		t.Fatalf("%s %s: 400 without Proxmox's envelope: %s", method, path, ans.body)
	}
	ans.errors = env.Errors
	return ans
}

// nonPathParams lists a route's parameters that travel in the query or
// body, with indexed families as their first member (net[n] -> net0).
func nonPathParams(r *pveschema.Route) map[string]*pveschema.Param {
	out := map[string]*pveschema.Param{}
	for name, p := range r.Params {
		if strings.Contains(r.Path, "{"+name+"}") {
			continue
		}
		out[strings.Replace(name, "[n]", "0", 1)] = p
	}
	return out
}

// Every served route refuses what Proxmox refuses, with Proxmox's status
// and messages: undefined parameters, missing required ones, wrong types,
// enum values and ranges.
func TestEveryRouteRefusesWhatProxmoxRefuses(t *testing.T) {
	checked := 0
	for _, key := range pveschema.Served() {
		route := pveRoutes[key]
		t.Run(key, func(t *testing.T) {
			sim := New(Options{})
			path := concretePath(route.Path)
			required := map[string]string{}
			for name, p := range nonPathParams(route) {
				if !p.Optional && p.Alias == "" {
					v, ok := sampleValue(route, name, p)
					if !ok {
						t.Fatalf("no sample value for required %s", name)
					}
					required[name] = v
				}
			}
			maps.Copy(required, requiredInPractice[key])
			with := func(k, v string) map[string]string {
				m := map[string]string{k: v}
				for rk, rv := range required {
					if rk != k {
						m[rk] = rv
					}
				}
				return m
			}
			expect := func(params map[string]string, param, want string) {
				t.Helper()
				checked++
				a := schemaCall(t, sim, route.Method, path, params)
				if a.status != http.StatusBadRequest || a.errors[param] != want {
					t.Errorf("%v: got %d %q, want 400 errors[%s]=%q", params, a.status, a.errors, param, want)
				}
			}
			expect(with("pvesim-undefined", "1"), "pvesim-undefined", pveschema.MsgNotDefined)
			for name := range required {
				params := with("", "")
				delete(params, "")
				delete(params, name)
				if _, ok := requiredInPractice[key][name]; ok {
					expect(params, name, "property is missing") // the route's code, not the schema
					continue
				}
				expect(params, name, pveschema.MsgMissing)
			}
			for name, p := range nonPathParams(route) {
				switch p.Type {
				case "integer", "number", "boolean":
					expect(with(name, "x"), name, "type check ('"+p.Type+"') failed - got 'x'")
				}
				if len(p.Enum) > 0 {
					expect(with(name, "pvesim-no-such-value"), name,
						"value 'pvesim-no-such-value' does not have a value in the enumeration '"+strings.Join(p.Enum, ", ")+"'")
				}
				if p.Format != "" || p.Keys != nil || p.Pattern != "" {
					continue // a format or pattern is checked before the range
				}
				if p.Minimum != nil && (p.Type == "integer" || p.Type == "number") {
					expect(with(name, strconv.FormatFloat(*p.Minimum-1, 'f', -1, 64)), name,
						"value must have a minimum value of "+strconv.FormatFloat(*p.Minimum, 'f', -1, 64))
				}
				if p.Maximum != nil && (p.Type == "integer" || p.Type == "number") {
					expect(with(name, strconv.FormatFloat(*p.Maximum+1, 'f', -1, 64)), name,
						"value must have a maximum value of "+strconv.FormatFloat(*p.Maximum, 'f', -1, 64))
				}
				if p.MaxLength != nil {
					expect(with(name, strings.Repeat("a", *p.MaxLength+1)), name,
						"value may only be "+strconv.Itoa(*p.MaxLength)+" characters long")
				}
				if p.MinLength != nil && *p.MinLength > 0 {
					expect(with(name, strings.Repeat("a", *p.MinLength-1)), name,
						"value must be at least "+strconv.Itoa(*p.MinLength)+" characters long")
				}
			}
		})
	}
	t.Logf("%d refusals checked over %d routes", checked, len(pveRoutes))
}

// Every parameter Proxmox accepts passes the simulator's validation with a
// valid value: the handler may still fail on the simulator's state, but
// never with a 400 about that parameter, except the parameters pvesim
// declares unsimulated, which are refused naming themselves.
func TestEveryRouteAcceptsWhatProxmoxAccepts(t *testing.T) {
	params := 0
	for _, key := range pveschema.Served() {
		route := pveRoutes[key]
		t.Run(key, func(t *testing.T) {
			required := map[string]string{}
			all := nonPathParams(route)
			for name, p := range all {
				if !p.Optional && p.Alias == "" {
					v, _ := sampleValue(route, name, p)
					required[name] = v
				}
			}
			maps.Copy(required, requiredInPractice[key])
			names := make([]string, 0, len(all))
			for n := range all {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, name := range names {
				p := all[name]
				v, ok := sampleValue(route, name, p)
				if !ok {
					t.Errorf("no sample value for %s (%+v)", name, *p)
					continue
				}
				req := map[string]string{name: v}
				for k, rv := range required {
					req[k] = rv
				}
				if p.Requires != "" {
					req[p.Requires], _ = sampleValue(route, p.Requires, all[p.Requires])
				}
				params++
				a := schemaCall(t, New(Options{}), route.Method, concretePath(route.Path), req)
				refusedName := name
				if _, ok := Unsimulated(key)[p.Requires]; ok {
					refusedName = p.Requires // e.g. unique requires archive
				}
				why, unsim := Unsimulated(key)[refusedName]
				if unsim {
					name := refusedName
					if a.status != http.StatusBadRequest || a.errors[name] != "not implemented by pvesim: "+why {
						t.Errorf("%s=%q: unsimulated parameter not refused: %d %s", name, v, a.status, a.body)
					}
					continue
				}
				if a.status == http.StatusBadRequest {
					t.Errorf("%s=%q refused: %s", name, v, a.body)
				}
			}
		})
	}
	t.Logf("%d parameters accepted over %d routes", params, len(pveRoutes))
}

// Requests records what was sent and what Proxmox's schema says about it.
func TestRequestsRecordsViolations(t *testing.T) {
	sim := New(Options{})
	schemaCall(t, sim, "POST", "/nodes/pve1/qemu/9000/status/start", map[string]string{"todisk": "1"})
	schemaCall(t, sim, "POST", "/nodes/pve1/qemu/9000/status/start", map[string]string{"timeout": "30"})
	reqs := sim.Requests()
	if len(reqs) != 2 {
		t.Fatalf("recorded %d requests, want 2", len(reqs))
	}
	bad, good := reqs[0], reqs[1]
	if bad.Key() != "POST /nodes/{node}/qemu/{vmid}/status/start" || strings.Join(bad.Params, ",") != "node,todisk,vmid" ||
		bad.Errors["todisk"] != pveschema.MsgNotDefined {
		t.Fatalf("invalid request recorded as %+v", bad)
	}
	if good.Errors != nil || strings.Join(good.Params, ",") != "node,timeout,vmid" {
		t.Fatalf("valid request recorded as %+v", good)
	}
}
