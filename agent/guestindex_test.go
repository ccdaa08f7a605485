package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/pvesim"
)

// listings counts the agent's listings of the whole cluster so far.
func (e *env) listings() int {
	n := 0
	for _, r := range e.sim.Requests() {
		if r.Path == "/cluster/resources" {
			n++
		}
	}
	return n
}

// histogramCount is the observations of histogram name in reg.
func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// gaugeValue is the value of the (single-series) gauge name in reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no single series of %s", name)
	return 0
}

// Once reconciliation has listed the cluster, operations find their guests
// in the index: a create, power actions and a delete list nothing more.
// A hit Proxmox denies (a guest deleted by hand) falls back to a listing.
func TestGuestIndexSparesListings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{Guests: 30})
	_, reg := e.startAgent(func(c *Config) { c.ReconcileInterval = time.Hour })
	e.waitInventory()
	before := e.listings()
	if before != 1 {
		t.Fatalf("%d listings before any request, want reconciliation's one", before)
	}

	spec := domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8}
	vm := uuid.New()
	made := e.ok(e.request(vm, e.createReq(domain.KindQEMU, "indexed", "debian-12", spec)))
	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionStop}))
	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionStart}))
	e.ok(e.request(vm, &domain.VMResizeRequested{Spec: domain.VMSpec{Cores: 2, MemoryMB: 512, DiskGB: 8}}))
	if n := e.listings(); n != before {
		t.Fatalf("create, stop, start and resize listed the cluster %d times, want none", n-before)
	}
	if g := e.guest(vm); g.VMID != made.PVEVMID || g.Status != pvesim.StatusRunning || g.Config["cores"] != "2" {
		t.Fatalf("guest %+v after the requests", g)
	}
	// The reconciliation pass was measured.
	if n := histogramCount(t, reg, "accountdb_agent_reconcile_seconds"); n != 1 {
		t.Fatalf("accountdb_agent_reconcile_seconds counts %d passes, want 1", n)
	}
	if got := gaugeValue(t, reg, "accountdb_agent_reconcile_guests"); got != 33 {
		t.Fatalf("accountdb_agent_reconcile_guests = %v, want 33 (30 guests, 3 templates)", got)
	}

	// Deleted by hand: the index still names it, Proxmox denies it, the
	// agent lists the cluster and concludes it is gone.
	if err := e.sim.DropGuest(made.PVEVMID); err != nil {
		t.Fatal(err)
	}
	r := e.result(e.request(vm, &domain.VMActionRequested{Action: domain.ActionStop}))
	if r.Succeeded || !strings.Contains(r.Error, protocol.VMTag(vm)) {
		t.Fatalf("stop of a guest deleted by hand: %+v", r)
	}
	if e.listings() == before {
		t.Fatal("a stale index entry was acted on without a listing")
	}
	e.ok(e.request(vm, &domain.VMActionRequested{Action: domain.ActionDelete}))
}
