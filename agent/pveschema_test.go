package agent

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/accountdb/accountdb/pvesim"
)

// Every request the agent makes in these suites is checked against
// Proxmox VE's own API schema (pvesim validates each one and records it):
// an agent bug that a real Proxmox node would answer with 400 fails here
// even where the simulator's answer happened not to matter to the test.

var (
	pveSeenMu sync.Mutex
	pveSeen   = map[string]bool{} // "METHOD /route/template param,param"
)

// checkPVERequests fails t for every request sim received that Proxmox's
// schema refuses or that pvesim refused as unsimulated, and remembers the
// distinct requests for the summary TestMain prints under -v.
func checkPVERequests(t *testing.T, sim *pvesim.Simulator) {
	t.Helper()
	for _, q := range sim.Requests() {
		if q.Errors != nil {
			t.Errorf("the agent sent %s with %v; Proxmox refuses it: %v", q.Key(), q.Params, q.Errors)
		}
		if len(q.Unsimulated) > 0 {
			t.Errorf("the agent sent %s with %v, which pvesim does not simulate", q.Key(), q.Unsimulated)
		}
		pveSeenMu.Lock()
		pveSeen[q.Key()+" "+strings.Join(q.Params, ",")] = true
		pveSeenMu.Unlock()
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testing.Verbose() {
		pveSeenMu.Lock()
		seen := make([]string, 0, len(pveSeen))
		for k := range pveSeen {
			seen = append(seen, k)
		}
		pveSeenMu.Unlock()
		sort.Strings(seen)
		fmt.Printf("Proxmox requests the agent made, all validated against Proxmox VE 8.2's schema (%d distinct):\n", len(seen))
		for _, s := range seen {
			fmt.Println("  " + s)
		}
	}
	os.Exit(code)
}
