package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/pvesim"
)

// Placement reads the nodes once per refresh, not per create, and counts
// what it placed since as used, so creates in between spread over the
// nodes; a clone that fails other than for capacity makes the next create
// read them again.
func TestPlacementReadsTheNodesOncePerRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{})
	for _, n := range []string{"pve1", "pve2", "pve3"} {
		if err := e.sim.SetNodeCapacity(n, 64<<30, 0); err != nil {
			t.Fatal(err)
		}
	}
	e.startAgent(func(c *Config) { c.PlacementRefresh = time.Hour })
	e.waitInventory()
	statusReads := func() int {
		n := 0
		for _, q := range e.sim.Requests() {
			if q.Key() == "GET /nodes/{node}/status" {
				n++
			}
		}
		return n
	}
	spec := domain.VMSpec{Cores: 1, MemoryMB: 2048, DiskGB: 8}
	before := statusReads()
	on := map[string]int{}
	for i := range 6 {
		r := e.ok(e.request(uuid.New(), e.createReq(domain.KindQEMU, fmt.Sprintf("p%d", i), "debian-12", spec)))
		on[r.Node]++
	}
	if got := statusReads() - before; got != 3 {
		t.Fatalf("6 creates read node statuses %d times, want 3 (each of the 3 nodes once)", got)
	}
	if on["pve1"] != 2 || on["pve2"] != 2 || on["pve3"] != 2 {
		t.Fatalf("6 creates on 3 equal nodes placed %v, want 2 on each", on)
	}

	e.sim.FailNextTasks("qmclone", 1, "clone failed: storage 'local-lvm' is not online")
	if r := e.result(e.request(uuid.New(), e.createReq(domain.KindQEMU, "f", "debian-12", spec))); r.Succeeded {
		t.Fatalf("create with a failing clone succeeded: %+v", r)
	}
	before = statusReads()
	e.ok(e.request(uuid.New(), e.createReq(domain.KindQEMU, "g", "debian-12", spec)))
	if got := statusReads() - before; got != 3 {
		t.Fatalf("the create after a failed clone read node statuses %d times, want 3", got)
	}
}
