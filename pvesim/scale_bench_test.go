package pvesim

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

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
			for b.Loop() {
				w := httptest.NewRecorder()
				sim.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", path, w.Code, w.Body.String())
				}
			}
		})
	}
}
