package pvesim

import (
	"net/http"
	"testing"
)

// Seeded guests are ordinary guests spread over the nodes: untagged, under
// distinct vmids that skip the templates', counted in each node's usage,
// and listed by the cluster and by their node.
func TestSeededGuestsSpreadOverTheNodes(t *testing.T) {
	e := newEnv(t, Options{Nodes: 4, Guests: 40}, false)
	perNode := map[string]int{}
	running := 0
	for _, g := range e.sim.Guests() {
		if g.Template {
			continue
		}
		perNode[g.Node]++
		if g.Status == StatusRunning {
			running++
		}
	}
	for _, n := range []string{"pve1", "pve2", "pve3", "pve4"} {
		if perNode[n] != 10 {
			t.Fatalf("node %s holds %d seeded guests, want 10: %v", n, perNode[n], perNode)
		}
	}
	if running != 30 {
		t.Fatalf("%d seeded guests run, want 30 (every fourth stopped)", running)
	}
	rs, err := e.client.Cluster(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	vms, err := rs.Resources(e.ctx, "vm")
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != 43 { // 40 and the three default templates
		t.Fatalf("/cluster/resources lists %d guests, want 43", len(vms))
	}
	for _, r := range vms {
		if r.Template == 0 && r.Tags != "" {
			t.Fatalf("seeded guest %d has tags %q", r.VMID, r.Tags)
		}
	}
	ct, err := e.node(t, "pve2").Containers(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	qm, err := e.node(t, "pve2").VirtualMachines(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ct)+len(qm) != 10 || len(ct) != 2 {
		t.Fatalf("pve2 lists %d containers and %d VMs, want 2 of 10", len(ct), len(qm))
	}
	st := e.node(t, "pve2")
	// 7 or 8 running guests of 256 or 512 MiB, above the host's 2 GiB.
	if st.Memory.Used <= hostOverhead+6*seededLXCMemoryMB<<20 {
		t.Fatalf("pve2 uses %d bytes of memory: its running guests are not counted", st.Memory.Used)
	}
}

// A node that goes down: its guests are "unknown" in /cluster/resources,
// the node "offline", requests to it fail with 595; back online, all is
// as it was.
func TestOfflineNodeGuestsAreUnknown(t *testing.T) {
	e := newEnv(t, Options{Nodes: 2, Guests: 4}, false)
	status := func() map[int]string {
		cl, err := e.client.Cluster(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		vms, err := cl.Resources(e.ctx, "vm")
		if err != nil {
			t.Fatal(err)
		}
		out := map[int]string{}
		for _, r := range vms {
			out[int(r.VMID)] = r.Node + ":" + r.Status
		}
		return out
	}
	before := status()
	if err := e.sim.SetNodeOnline("pve2", false); err != nil {
		t.Fatal(err)
	}
	during := status()
	for vmid, was := range before {
		want := was
		if was[:4] == "pve2" {
			want = "pve2:" + StatusUnknown
		}
		if during[vmid] != want {
			t.Fatalf("guest %d: %q while pve2 is down, want %q", vmid, during[vmid], want)
		}
	}
	nodes, err := e.client.Nodes(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if want := map[string]string{"pve1": "online", "pve2": "offline"}[n.Node]; n.Status != want {
			t.Fatalf("node %s is %q, want %q", n.Node, n.Status, want)
		}
	}
	req, err := http.NewRequestWithContext(e.ctx, http.MethodGet, e.srv.URL()+"/nodes/pve2/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "PVEAPIToken="+DefaultToken)
	res, err := insecureHTTP().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.Status != "595 No route to host" {
		t.Fatalf("GET /nodes/pve2/status while it is down: %q, want 595 No route to host", res.Status)
	}
	if err := e.sim.SetNodeOnline("pve2", true); err != nil {
		t.Fatal(err)
	}
	after := status()
	for vmid, was := range before {
		if after[vmid] != was {
			t.Fatalf("guest %d: %q once pve2 is back, want %q", vmid, after[vmid], was)
		}
	}
}
