package vm_test

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/accountdb/accountdb/pvesim"
)

// TestAddressesOnProxmox: a VM created over HTTP with the cluster's default
// pool is running as soon as Proxmox says so; its guest's addresses arrive
// afterwards as their own event (the QEMU guest agent answers only once the
// guest has booted), and its pool address is released once Proxmox deleted
// it.
func TestAddressesOnProxmox(t *testing.T) {
	e := newRealEnv(t, stacktest.Options{}, pvesim.Options{TimeScale: 5 * time.Millisecond, GuestBoot: 40})
	admin := e.s.Login(t, e.s.User(t, domain.PlatformTenant, auth.RolePlatformAdmin)).AccessToken
	var pool accepted
	if r := e.s.Do(t, admin, http.MethodPost, "/v1/ip-pools", map[string]any{"name": "lan", "cluster_id": e.cluster.String(),
		"bridge": "vmbr0", "cidr": "10.77.0.0/24", "gateway": "10.77.0.1", "range_start": "10.77.0.100", "range_end": "10.77.0.199",
		"nameservers": []string{"10.77.0.1"}, "ipv6_prefix": "2001:db8:77::/64", "default": true}, &pool); r.StatusCode != http.StatusAccepted {
		t.Fatalf("pool: %d %s", r.StatusCode, r.Body)
	}
	en := e.tenant(t, roomyQuota)
	a := en.create(t, "web-1")
	en.waitStatus(t, a.ID, "running")

	var v vmAddresses
	stacktest.Eventually(t, 30*time.Second, "the guest's addresses", func() bool {
		return slices.ContainsFunc(en.history(t, a.ID), func(h historyEvent) bool { return h.Type == "vm_guest_addresses_reported" })
	})
	stacktest.Eventually(t, 10*time.Second, "the read model", func() bool {
		v = vmAddresses{}
		en.s.Do(t, en.token, http.MethodGet, "/v1/vms/"+a.ID, nil, &v)
		return len(v.IPAddresses) >= 2 && v.Status == "running"
	})
	if p := v.IPAddresses; p[0].Address != "10.77.0.100" || p[0].Source != "pool" || p[0].Family != 4 ||
		p[1].Address != "2001:db8:77::64" || p[1].Source != "pool" || p[1].Family != 6 {
		t.Fatalf("pool addresses %+v", p)
	}
	for _, g := range v.IPAddresses[2:] {
		ip := netip.MustParseAddr(g.Address)
		if g.Source != "guest" || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			t.Fatalf("guest address %+v", g)
		}
	}
	// The agent configured the guest with the pool's address before its
	// first start (cloud-init's ipconfig0, the NIC on the pool's bridge,
	// the pool's DNS), and the guest, once booted, reports exactly it.
	var placed vm
	en.s.Do(t, en.token, http.MethodGet, "/v1/vms/"+a.ID, nil, &placed)
	g, ok := e.sim.Simulator().Guest(placed.VMID)
	if !ok || g.Config["ipconfig0"] != "ip=10.77.0.100/24,gw=10.77.0.1,ip6=2001:db8:77::64/128,gw6=2001:db8:77::1" ||
		!strings.Contains(g.Config["net0"], "bridge=vmbr0") || g.Config["nameserver"] != "10.77.0.1" {
		t.Fatalf("guest config on pvesim: %v", g.Config)
	}
	var reported []string
	for _, h := range en.history(t, a.ID) {
		if h.Type == "vm_guest_addresses_reported" {
			var r struct{ Addresses []string }
			_ = json.Unmarshal(h.Data, &r)
			reported = r.Addresses
		}
	}
	if !slices.Equal(reported, []string{"10.77.0.100", "2001:db8:77::64"}) || len(v.IPAddresses) != 2 {
		t.Fatalf("the guest reported %v; the VM shows %+v", reported, v.IPAddresses)
	}

	en.do(t, http.MethodDelete, "/v1/vms/"+a.ID, nil)
	en.waitStatus(t, a.ID, "deleted")
	stacktest.Eventually(t, 10*time.Second, "the address released", func() bool {
		var l struct{ Items []poolAddress }
		e.s.Do(t, admin, http.MethodGet, "/v1/ip-pools/"+pool.ID+"/addresses", nil, &l)
		return len(l.Items) == 0
	})
}
