package pvesim

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	proxmox "github.com/luthermonson/go-proxmox"
)

// TestConcurrentCreates runs 100 clients doing what a real one must against
// PVE: ask nextid (not reserved), create, and retry on "already exists".
func TestConcurrentCreates(t *testing.T) {
	e := newEnv(t, Options{}, false)
	cl, err := e.client.Cluster(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	const workers = 100
	var wg sync.WaitGroup
	ids := make([]int, workers)
	errs := make([]error, workers)
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			node := &proxmox.Node{}
			node = node.New(e.client, fmt.Sprintf("pve%d", i%3+1))
			for attempt := 0; attempt < 200; attempt++ {
				id, err := cl.NextID(e.ctx)
				if err != nil {
					errs[i] = err
					return
				}
				task, err := node.NewVirtualMachine(e.ctx, id, proxmox.VirtualMachineOption{Name: "name", Value: fmt.Sprintf("c-%d", i)})
				if err != nil {
					if strings.Contains(err.Error(), "already exists") {
						continue
					}
					errs[i] = err
					return
				}
				if err := task.Ping(e.ctx); err != nil || !task.IsSuccessful {
					errs[i] = fmt.Errorf("task %s: %v %s", task.UPID, err, task.ExitStatus)
					return
				}
				ids[i] = id
				return
			}
			errs[i] = fmt.Errorf("worker %d gave up", i)
		}(i)
	}
	wg.Wait()
	seen := map[int]int{}
	for i, id := range ids {
		if errs[i] != nil {
			t.Fatalf("worker %d: %v", i, errs[i])
		}
		if prev, dup := seen[id]; dup {
			t.Fatalf("vmid %d handed to workers %d and %d", id, prev, i)
		}
		seen[id] = i
	}
	rs, err := cl.Resources(e.ctx, "vm")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != workers+3 {
		t.Fatalf("resources = %d, want %d", len(rs), workers+3)
	}
}
