package pvesim

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

// The bare handler works under httptest too, including PVE's error
// reason phrases.
func TestHandlerUnderHTTPTest(t *testing.T) {
	sim := New(Options{Nodes: 1, Templates: []Template{}})
	ts := httptest.NewServer(sim)
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := proxmox.NewClient(ts.URL+"/api2/json", proxmox.WithAPIToken(DefaultTokenID, DefaultTokenSecret))
	n, err := c.Node(ctx, "pve1")
	if err != nil {
		t.Fatal(err)
	}
	vms, err := n.VirtualMachines(ctx)
	if err != nil || len(vms) != 0 {
		t.Fatalf("templates seeded despite empty list: %v %v", vms, err)
	}
	_, err = n.VirtualMachine(ctx, 123)
	wantErr(t, err, "500 Configuration file 'nodes/pve1/qemu-server/123.conf' does not exist")
	if len(sim.Guests()) != 0 {
		t.Fatal("unexpected guests")
	}
	if _, err := c.Node(ctx, "pve2"); err == nil {
		t.Fatal("node pve2 exists in a 1-node cluster")
	}
}
