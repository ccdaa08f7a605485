package vm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ipamEnv is a stack with a registered cluster (whose inventory the fake
// agent reports), a platform administrator, and tenants created on demand.
type ipamEnv struct {
	*env
	admin   string // platform administrator's token
	cluster uuid.UUID
}

func newIPAMEnv(t *testing.T) *ipamEnv {
	t.Helper()
	s := stacktest.Start(t, stacktest.Options{})
	admin := s.Login(t, s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)).AccessToken
	cluster := registerCluster(t, s, admin, "pve-"+uuid.NewString()[:8])
	a := newFakeAgent(t, s)
	a.cluster = cluster
	a.inventory()
	e := &env{s: s, agent: a}
	e.tenID = s.TenantWithQuota(t, "acme", roomyQuota)
	e.token = s.Login(t, s.User(t, e.tenID, auth.RoleVMAdmin)).AccessToken
	stacktest.Eventually(t, 10*time.Second, "templates of the registered cluster", func() bool {
		type template struct {
			ClusterID string `json:"cluster_id"`
		}
		var l struct{ Items []template }
		r := s.Do(t, e.token, http.MethodGet, "/v1/templates", nil, &l)
		return r.StatusCode == 200 && slices.ContainsFunc(l.Items, func(x template) bool { return x.ClusterID == cluster.String() })
	})
	return &ipamEnv{env: e, admin: admin, cluster: cluster}
}

func registerCluster(t *testing.T, s *stacktest.Stack, admin, name string) uuid.UUID {
	t.Helper()
	var a accepted
	r := s.Do(t, admin, http.MethodPost, "/v1/clusters", map[string]any{"name": name, "api_url": "https://" + name + ".example:8006/api2/json",
		"token_id": pvesim.DefaultTokenID, "token_secret": pvesim.DefaultTokenSecret,
		"tls_fingerprint": strings.TrimSuffix(strings.Repeat("0A:", 32), ":")}, &a)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("register cluster: %d %s", r.StatusCode, r.Body)
	}
	return uuid.MustParse(a.ID)
}

func (e *ipamEnv) poolBody(extra map[string]any) map[string]any {
	b := map[string]any{"name": "pool-" + uuid.NewString()[:8], "cluster_id": e.cluster.String(), "bridge": "vmbr0",
		"cidr": "10.20.0.0/24", "gateway": "10.20.0.1", "range_start": "10.20.0.10", "range_end": "10.20.0.250",
		"nameservers": []string{"10.20.0.53"}}
	for k, v := range extra {
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	return b
}

func (e *ipamEnv) createPool(t *testing.T, extra map[string]any) accepted {
	t.Helper()
	var a accepted
	if r := e.s.Do(t, e.admin, http.MethodPost, "/v1/ip-pools", e.poolBody(extra), &a); r.StatusCode != http.StatusAccepted {
		t.Fatalf("create pool: %d %s", r.StatusCode, r.Body)
	}
	return a
}

type ipPool struct {
	ID         string   `json:"id"`
	ClusterID  string   `json:"cluster_id"`
	Bridge     string   `json:"bridge"`
	VLAN       *int     `json:"vlan"`
	CIDR       string   `json:"cidr"`
	IPv6Prefix *string  `json:"ipv6_prefix"`
	Size       int      `json:"size"`
	Allocated  int      `json:"allocated"`
	Servers    []string `json:"nameservers"`
}

type poolAddress struct {
	Address  string `json:"address"`
	VMID     string `json:"vm_id"`
	TenantID string `json:"tenant_id"`
}

type vmAddresses struct {
	Status      string `json:"status"`
	IPAddresses []struct {
		Address string `json:"address"`
		Family  int    `json:"family"`
		Source  string `json:"source"`
	} `json:"ip_addresses"`
}

func (e *ipamEnv) addresses(t *testing.T, pool string, token int64) []poolAddress {
	t.Helper()
	var all []poolAddress
	cursor := ""
	for {
		var l struct {
			Items      []poolAddress
			NextCursor *string `json:"next_cursor"`
		}
		r := e.s.Do(t, e.admin, http.MethodGet, "/v1/ip-pools/"+pool+"/addresses?limit=200"+cursor, nil, &l, "X-Consistency-Token", fmt.Sprint(token))
		if r.StatusCode != http.StatusOK {
			t.Fatalf("pool addresses: %d %s", r.StatusCode, r.Body)
		}
		all = append(all, l.Items...)
		if l.NextCursor == nil {
			return all
		}
		cursor = "&cursor=" + *l.NextCursor
	}
}

func (e *ipamEnv) createVM(t *testing.T, token, name string, network map[string]any) stacktest.Response {
	t.Helper()
	body := map[string]any{"name": name, "kind": "qemu", "cores": 1, "memory_mb": 512, "disk_gb": 10, "template": "debian-12"}
	if network != nil {
		body["network"] = network
	}
	return e.s.Do(t, token, http.MethodPost, "/v1/vms", body, nil)
}

// Bad pools are refused naming the field, with no event; only platform
// administrators reach the routes.
func TestIPPoolValidationAndAccess(t *testing.T) {
	e := newIPAMEnv(t)
	first := e.createPool(t, map[string]any{"vlan": 42, "ipv6_prefix": "2001:db8:20::/64", "default": true})
	before := e.eventCount(t)
	for _, c := range []struct {
		name   string
		extra  map[string]any
		status int
		field  string
	}{
		{"range outside cidr", map[string]any{"range_end": "10.20.1.5"}, 400, "range_end"},
		{"gateway outside cidr", map[string]any{"gateway": "10.21.0.1"}, 400, "gateway"},
		{"cidr not a network address", map[string]any{"cidr": "10.20.0.7/24"}, 400, "cidr"},
		{"range backwards", map[string]any{"range_start": "10.20.0.200", "range_end": "10.20.0.100", "cidr": "10.30.0.0/24",
			"gateway": "10.30.0.1"}, 400, "range_end"},
		{"vlan zero", map[string]any{"vlan": 0}, 400, "vlan"},
		{"vlan too large", map[string]any{"vlan": 4095}, 400, "vlan"},
		{"bad bridge", map[string]any{"bridge": "vmbr0;rm"}, 400, "bridge"},
		{"bad nameserver", map[string]any{"nameservers": []string{"dns.example"}}, 400, "nameservers[0]"},
		{"ipv6 prefix too narrow", map[string]any{"cidr": "10.40.0.0/16", "gateway": "10.40.0.1", "range_start": "10.40.0.10",
			"range_end": "10.40.0.20", "ipv6_prefix": "2001:db8:40::/120"}, 400, "ipv6_prefix"},
		{"overlapping pool on the same bridge", map[string]any{"cidr": "10.20.0.0/16", "gateway": "10.20.0.1", "range_start": "10.20.5.1",
			"range_end": "10.20.5.9"}, 400, "cidr"},
		{"unknown cluster", map[string]any{"cluster_id": uuid.NewString(), "cidr": "10.50.0.0/24", "gateway": "10.50.0.1",
			"range_start": "10.50.0.10", "range_end": "10.50.0.20"}, 400, "cluster_id"},
		{"a second default pool", map[string]any{"cidr": "10.60.0.0/24", "gateway": "10.60.0.1", "range_start": "10.60.0.10",
			"range_end": "10.60.0.20", "default": true}, 409, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.s.Do(t, e.admin, http.MethodPost, "/v1/ip-pools", e.poolBody(c.extra), nil)
			if r.StatusCode != c.status {
				t.Fatalf("%d %s", r.StatusCode, r.Body)
			}
			if c.field != "" {
				if _, ok := problemFields(r.Problem(t))[c.field]; !ok {
					t.Fatalf("no error on %s: %s", c.field, r.Body)
				}
			}
		})
	}
	if n := e.eventCount(t); n != before {
		t.Fatalf("%d events recorded by refused pools", n-before)
	}
	// The same network on another bridge is another pool.
	other := e.createPool(t, map[string]any{"bridge": "vmbr1"})

	var p ipPool
	if r := e.s.Do(t, e.admin, http.MethodGet, "/v1/ip-pools/"+first.ID, nil, &p, "X-Consistency-Token", fmt.Sprint(other.Position)); r.StatusCode != 200 {
		t.Fatalf("get pool: %d %s", r.StatusCode, r.Body)
	}
	if p.Size != 241 || p.Allocated != 0 || p.VLAN == nil || *p.VLAN != 42 || p.IPv6Prefix == nil || *p.IPv6Prefix != "2001:db8:20::/64" ||
		p.ClusterID != e.cluster.String() || len(p.Servers) != 1 {
		t.Fatalf("pool: %+v", p)
	}
	var l struct{ Items []ipPool }
	if r := e.s.Do(t, e.admin, http.MethodGet, "/v1/ip-pools", nil, &l); r.StatusCode != 200 || len(l.Items) != 2 {
		t.Fatalf("list pools: %d %s", r.StatusCode, r.Body)
	}

	// Whoever may create a VM sees the pools to pick one (as templates are
	// offered); a viewer does not.
	ta := e.s.Login(t, e.s.User(t, e.tenID, auth.RoleTenantAdmin)).AccessToken
	if r := e.s.Do(t, ta, http.MethodGet, "/v1/ip-pools", nil, &l); r.StatusCode != 200 || len(l.Items) != 2 {
		t.Fatalf("a tenant admin lists pools: %d %s", r.StatusCode, r.Body)
	}
	if r := e.s.Do(t, ta, http.MethodGet, "/v1/ip-pools/"+first.ID, nil, nil); r.StatusCode != 200 {
		t.Fatalf("a tenant admin reads a pool: %d %s", r.StatusCode, r.Body)
	}
	viewer := e.s.Login(t, e.s.User(t, e.tenID, auth.RoleViewer)).AccessToken
	if r := e.s.Do(t, viewer, http.MethodGet, "/v1/ip-pools", nil, nil); r.StatusCode != http.StatusForbidden {
		t.Fatalf("a viewer lists pools: %d %s", r.StatusCode, r.Body)
	}
	// Creating pools and seeing who holds which address: platform
	// administrators only.
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/v1/ip-pools"}, {http.MethodGet, "/v1/ip-pools/" + first.ID + "/addresses"},
	} {
		var body any
		if c.method == http.MethodPost {
			body = e.poolBody(map[string]any{"cidr": "10.70.0.0/24", "gateway": "10.70.0.1", "range_start": "10.70.0.10", "range_end": "10.70.0.20"})
		}
		if r := e.s.Do(t, ta, c.method, c.path, body, nil); r.StatusCode != http.StatusForbidden {
			t.Fatalf("tenant admin %s %s: %d %s", c.method, c.path, r.StatusCode, r.Body)
		}
	}
	if r := e.s.Do(t, e.admin, http.MethodGet, "/v1/ip-pools/"+uuid.NewString(), nil, nil); r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown pool: %d", r.StatusCode)
	}
}

// A VM takes the next free address of its pool (IPv4 and the IPv6 /128) in
// the transaction of its request; its tenant sees it, another tenant does
// not; it is released only once Proxmox confirmed the deletion.
func TestVMAddressFromPool(t *testing.T) {
	e := newIPAMEnv(t)
	pool := e.createPool(t, map[string]any{"ipv6_prefix": "2001:db8:20::/64", "vlan": 7, "default": true})

	var a accepted
	r := e.s.Do(t, e.token, http.MethodPost, "/v1/vms", map[string]any{"name": "web-1", "kind": "qemu", "cores": 1, "memory_mb": 512,
		"disk_gb": 10, "template": "debian-12", "network": map[string]any{"ip_pool_id": pool.ID}}, &a)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.StatusCode, r.Body)
	}
	var v vmAddresses
	e.s.Do(t, e.token, http.MethodGet, "/v1/vms/"+a.ID, nil, &v, "X-Consistency-Token", fmt.Sprint(a.Position))
	want := `[{"address":"10.20.0.10","family":4,"source":"pool"},{"address":"2001:db8:20::a","family":6,"source":"pool"}]`
	if got, _ := json.Marshal(v.IPAddresses); string(got) != want {
		t.Fatalf("ip_addresses %s, want %s", got, want)
	}
	// The request the agent reads carries the whole network.
	h := e.history(t, a.ID)
	var create struct{ Network domain.VMNetwork }
	if err := json.Unmarshal(h[0].Data, &create); err != nil || create.Network.IPConfig() != "ip=10.20.0.10/24,gw=10.20.0.1,ip6=2001:db8:20::a/128,gw6=2001:db8:20::1" ||
		create.Network.VLAN != 7 || create.Network.Bridge != "vmbr0" {
		t.Fatalf("create request's network: %s (%v)", h[0].Data, err)
	}

	// With no pool named, the cluster's default pool serves.
	var b accepted
	if r := e.s.Do(t, e.token, http.MethodPost, "/v1/vms", map[string]any{"name": "web-2", "kind": "qemu", "cores": 1, "memory_mb": 512,
		"disk_gb": 10, "template": "debian-12"}, &b); r.StatusCode != http.StatusAccepted {
		t.Fatalf("create with the default pool: %d %s", r.StatusCode, r.Body)
	}
	got := e.addresses(t, pool.ID, b.Position)
	if len(got) != 4 || got[0].Address != "10.20.0.10" || got[0].VMID != a.ID || got[0].TenantID != e.tenID.String() ||
		got[1].Address != "10.20.0.11" || got[1].VMID != b.ID {
		t.Fatalf("pool addresses: %+v", got)
	}

	// Another tenant's user: the VM and its addresses are not there.
	other := e.s.TenantWithQuota(t, "other", roomyQuota)
	ot := e.s.Login(t, e.s.User(t, other, auth.RoleVMAdmin)).AccessToken
	if r := e.s.Do(t, ot, http.MethodGet, "/v1/vms/"+a.ID, nil, nil); r.StatusCode != http.StatusNotFound {
		t.Fatalf("another tenant reads the VM: %d", r.StatusCode)
	}
	var ol struct{ Items []vmAddresses }
	if e.s.Do(t, ot, http.MethodGet, "/v1/vms", nil, &ol); len(ol.Items) != 0 {
		t.Fatalf("another tenant lists %d VMs", len(ol.Items))
	}

	// A pool of another cluster, an unknown pool, a malformed id: 400 naming the field.
	cluster2 := registerCluster(t, e.s, e.admin, "pve-"+uuid.NewString()[:8])
	var p2 accepted
	e.s.Do(t, e.admin, http.MethodPost, "/v1/ip-pools", e.poolBody(map[string]any{"cluster_id": cluster2.String()}), &p2)
	for _, id := range []string{p2.ID, uuid.NewString(), "not-a-uuid"} {
		r := e.s.Do(t, e.token, http.MethodPost, "/v1/vms", map[string]any{"name": "web-x", "kind": "qemu", "cores": 1, "memory_mb": 512,
			"disk_gb": 10, "template": "debian-12", "cluster_id": e.cluster.String(), "network": map[string]any{"ip_pool_id": id}}, nil)
		if _, ok := problemFields(expectProblem(t, r, http.StatusBadRequest, "validation_failed"))["network.ip_pool_id"]; !ok {
			t.Fatalf("pool %s: %s", id, r.Body)
		}
	}

	// Deleting: the address stays held until Proxmox confirms.
	e.succeed(t, a.ID, domain.ActionCreate, func(r *protocol.Result) { r.ClusterID, r.Node, r.PVEVMID = e.cluster, "pve1", 4242 })
	e.waitStatus(t, a.ID, "running")
	var del accepted
	e.s.Do(t, e.token, http.MethodDelete, "/v1/vms/"+a.ID, nil, &del)
	if got := e.addresses(t, pool.ID, del.Position); len(got) != 4 {
		t.Fatalf("address released before Proxmox confirmed the delete: %+v", got)
	}
	e.succeed(t, a.ID, domain.ActionDelete, nil)
	e.waitStatus(t, a.ID, "deleted")
	stacktest.Eventually(t, 10*time.Second, "address released", func() bool { return len(e.addresses(t, pool.ID, 0)) == 2 })
	e.s.Do(t, e.token, http.MethodGet, "/v1/vms/"+a.ID, nil, &v)
	if len(v.IPAddresses) != 0 {
		t.Fatalf("a deleted VM shows addresses: %+v", v.IPAddresses)
	}
	// The lowest free address is handed out again.
	var c accepted
	if r := e.s.Do(t, e.token, http.MethodPost, "/v1/vms", map[string]any{"name": "web-3", "kind": "qemu", "cores": 1, "memory_mb": 512,
		"disk_gb": 10, "template": "debian-12"}, &c); r.StatusCode != http.StatusAccepted {
		t.Fatalf("create after the release: %d %s", r.StatusCode, r.Body)
	}
	if got := e.addresses(t, pool.ID, c.Position); got[0].Address != "10.20.0.10" || got[0].VMID != c.ID {
		t.Fatalf("after release: %+v", got)
	}
}

// A full pool answers 422 pool_exhausted; the tenant's max_ipv4 holds.
func TestPoolExhaustedAndIPv4Quota(t *testing.T) {
	e := newIPAMEnv(t)
	pool := e.createPool(t, map[string]any{"cidr": "10.9.0.0/29", "gateway": "10.9.0.1", "range_start": "10.9.0.2", "range_end": "10.9.0.4"})
	net := map[string]any{"ip_pool_id": pool.ID}
	for i := range 3 {
		expectStatus(t, e.createVM(t, e.token, fmt.Sprintf("full-%d", i), net), http.StatusAccepted)
	}
	before := e.eventCount(t)
	expectProblem(t, e.createVM(t, e.token, "full-4", net), http.StatusUnprocessableEntity, "pool_exhausted")
	if n := e.eventCount(t); n != before {
		t.Fatalf("%d events recorded by a refused create", n-before)
	}

	small := e.s.TenantWithQuota(t, "small", domain.Quota{MaxVMs: 10, MaxCores: 100, MaxMemoryMB: 1 << 20, MaxDiskGB: 10000, MaxIPv4: 1})
	st := e.s.Login(t, e.s.User(t, small, auth.RoleVMAdmin)).AccessToken
	big := e.createPool(t, map[string]any{"cidr": "10.10.0.0/24", "gateway": "10.10.0.1", "range_start": "10.10.0.2", "range_end": "10.10.0.200"})
	expectStatus(t, e.createVM(t, st, "q-1", map[string]any{"ip_pool_id": big.ID}), http.StatusAccepted)
	expectProblem(t, e.createVM(t, st, "q-2", map[string]any{"ip_pool_id": big.ID}), http.StatusUnprocessableEntity, "quota_exceeded")
	// A VM without an address still fits its quota.
	expectStatus(t, e.createVM(t, st, "q-3", nil), http.StatusAccepted)
}

// 200 concurrent creates over 4 tenants from one pool, over HTTP: every VM
// gets its own address, and the pool, the VMs and the log agree.
func TestConcurrentCreatesGetDistinctAddresses(t *testing.T) {
	e := newIPAMEnv(t)
	pool := e.createPool(t, map[string]any{"cidr": "10.100.0.0/23", "gateway": "10.100.0.1", "range_start": "10.100.0.2",
		"range_end": "10.100.1.254", "ipv6_prefix": "2001:db8:100::/64"})
	const tenants, perTenant = 4, 50
	tokens := make([]string, tenants)
	for i := range tokens {
		ten := e.s.TenantWithQuota(t, fmt.Sprintf("t%d", i), domain.Quota{MaxVMs: perTenant, MaxCores: 1000, MaxMemoryMB: 1 << 20, MaxDiskGB: 100000})
		tokens[i] = e.s.Login(t, e.s.User(t, ten, auth.RoleVMAdmin)).AccessToken
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		ids   []string
		fails []string
	)
	for i := range tenants * perTenant {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var a accepted
			r := e.s.Do(t, tokens[i%tenants], http.MethodPost, "/v1/vms", map[string]any{"name": fmt.Sprintf("c-%d", i), "kind": "qemu",
				"cores": 1, "memory_mb": 512, "disk_gb": 10, "template": "debian-12", "network": map[string]any{"ip_pool_id": pool.ID}}, &a)
			mu.Lock()
			defer mu.Unlock()
			if r.StatusCode != http.StatusAccepted {
				fails = append(fails, fmt.Sprintf("%d %s", r.StatusCode, r.Body))
				return
			}
			ids = append(ids, a.ID)
		}()
	}
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("%d creates failed, first: %s", len(fails), fails[0])
	}
	// One more for a tenant is over its quota, not a second address.
	expectProblem(t, e.createVM(t, tokens[0], "over", map[string]any{"ip_pool_id": pool.ID}), http.StatusUnprocessableEntity, "quota_exceeded")

	var v4, vms int
	if err := e.admin2(t).QueryRow(context.Background(), `SELECT count(DISTINCT data->>'ipv4'), count(DISTINCT data->>'vm_id') FROM events
		WHERE event_type = 'ip_address_allocated' AND stream_id = $1`, "ip_pool-"+pool.ID).Scan(&v4, &vms); err != nil {
		t.Fatal(err)
	}
	if v4 != tenants*perTenant || vms != tenants*perTenant {
		t.Fatalf("the log holds %d distinct addresses for %d VMs, want %d", v4, vms, tenants*perTenant)
	}
	stacktest.Eventually(t, 30*time.Second, "pool read model", func() bool {
		return len(e.addresses(t, pool.ID, 0)) == 2*tenants*perTenant
	})
	seen := map[string]string{}
	for _, a := range e.addresses(t, pool.ID, 0) {
		if prev, dup := seen[a.Address]; dup {
			t.Fatalf("%s held by %s and %s", a.Address, prev, a.VMID)
		}
		seen[a.Address] = a.VMID
	}
	var p ipPool
	e.s.Do(t, e.admin, http.MethodGet, "/v1/ip-pools/"+pool.ID, nil, &p)
	if p.Allocated != tenants*perTenant {
		t.Fatalf("pool shows %d allocated", p.Allocated)
	}
}

// admin2 is a superuser connection to the stack's database (reads every
// tenant's events).
func (e *ipamEnv) admin2(t *testing.T) *pgx.Conn { return e.s.DB.AdminConn(t) }

func (e *ipamEnv) eventCount(t *testing.T) int {
	t.Helper()
	var n int
	if err := e.admin2(t).QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func problemFields(p map[string]any) map[string]any {
	f, _ := p["errors"].(map[string]any)
	return f
}

func expectProblem(t *testing.T, r stacktest.Response, status int, code string) map[string]any {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", r.StatusCode, status, r.Body)
	}
	p := r.Problem(t)
	if p["code"] != code {
		t.Fatalf("code %v, want %s: %s", p["code"], code, r.Body)
	}
	return p
}

func expectStatus(t *testing.T, r stacktest.Response, status int) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", r.StatusCode, status, r.Body)
	}
}
