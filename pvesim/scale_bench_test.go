package pvesim

import (
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAt10kGuests is the handler's cost per request with 10,000
// guests over 20 nodes (go test -run - -bench At10kGuests ./pvesim/): a
// node's status and guest list cost what that node holds; only the
// cluster-wide listing costs what the cluster holds.
func BenchmarkAt10kGuests(b *testing.B) {
	sim := New(Options{Nodes: 20, Guests: 10_000, NodeMemory: 1 << 40})
	for _, path := range []string{
		"/cluster/resources?type=vm", "/nodes", "/nodes/pve7/status", "/nodes/pve7/qemu",
		"/nodes/pve7/qemu/106/status/current", "/nodes/pve7/storage/local-lvm/content",
	} {
		b.Run(path, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, apiPrefix+path, nil)
			req.Header.Set("Authorization", "PVEAPIToken="+DefaultTokenID+"="+DefaultTokenSecret)
			cpu0, n := cpuTime(), 0
			for b.Loop() {
				w := httptest.NewRecorder()
				sim.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", path, w.Code, w.Body.String())
				}
				n++
			}
			// CPU time, which a loaded machine does not stretch as it
			// does the wall time of ns/op.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(n), "cpu-ns/op")
		})
	}
}
