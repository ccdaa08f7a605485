// Package api is AccountDB's HTTP surface: the chi router, its middleware and
// handlers. This file serves the operations endpoints: liveness, readiness
// and Prometheus metrics.
package api

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Check is one readiness condition. Check returns nil when the dependency is
// usable, or an error whose text is safe to show operators (no secrets).
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// readinessTimeout bounds each readiness check.
const readinessTimeout = 3 * time.Second

// readiness runs every check concurrently, each bounded by timeout. With
// detail it lists each check's status and error (the operations listener);
// without, it says only "ready" or "not_ready" (the public listener: which
// dependency fails, and why, is for operators).
type readiness struct {
	checks  []Check
	timeout time.Duration
	detail  bool
}

type checkResult struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

func (rd readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), rd.timeout)
	defer cancel()
	results := make(map[string]checkResult, len(rd.checks))
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, c := range rd.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := checkResult{Status: "ok"}
			if err := c.Check(ctx); err != nil {
				res = checkResult{Status: "failing", Error: err.Error()}
			}
			mu.Lock()
			results[c.Name] = res
			mu.Unlock()
		}()
	}
	wg.Wait()
	status := http.StatusOK
	overall := "ready"
	for _, res := range results {
		if res.Status != "ok" {
			status, overall = http.StatusServiceUnavailable, "not_ready"
		}
	}
	if !rd.detail {
		writeJSON(w, status, map[string]any{"status": overall})
		return
	}
	writeJSON(w, status, map[string]any{"status": overall, "checks": results})
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
