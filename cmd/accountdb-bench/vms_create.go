package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// runningLimit is how long one VM may take to run before the phase fails
// (-vm-running-limit).
var runningLimit = time.Minute

// waitRunning polls GET /v1/vms/{id} every interval until the VM runs.
func (c *vmClient) waitRunning(ctx context.Context, id string, interval time.Duration) error {
	deadline := time.Now().Add(runningLimit)
	for {
		var v vmAnswer
		code, err := c.do(ctx, http.MethodGet, "/v1/vms/"+id, nil, &v)
		if err != nil {
			return err
		}
		switch {
		case code == http.StatusOK && v.Status == "running":
			return nil
		case code == http.StatusOK && v.Status == "failed":
			return fmt.Errorf("VM %s failed: %s", id, v.LastError)
		case code != http.StatusOK && code != http.StatusNotFound: // 404: not projected yet
			return fmt.Errorf("get VM %s: %d", id, code)
		case time.Now().After(deadline):
			return fmt.Errorf("VM %s not running after %s (status %q)", id, runningLimit, v.Status)
		}
		if err := sleepCtx(ctx, interval); err != nil {
			return err
		}
	}
}

// createSequential creates n VMs one after the other, each polled with GET
// /v1/vms/{id} every interval until it runs.
func (c *vmClient) createSequential(ctx context.Context, n int, interval time.Duration) (createLevel, []string, error) {
	lv := createLevel{InFlight: 1, VMs: n, Method: fmt.Sprintf("GET /v1/vms/{id} every %s", interval)}
	var done atomic.Int64
	stop := startProgress(fmt.Sprintf("%d VM creates, one at a time", n), 0, func() string { return fmt.Sprintf("%d running", done.Load()) })
	defer stop()
	lat, post, ids := make([]time.Duration, 0, n), make([]time.Duration, 0, n), make([]string, 0, n)
	start := time.Now()
	for i := range n {
		t0 := time.Now()
		id, err := c.createVM(ctx, fmt.Sprintf("seq-%d", i))
		if err != nil {
			return lv, nil, err
		}
		post = append(post, time.Since(t0))
		if err := c.waitRunning(ctx, id, interval); err != nil {
			return lv, nil, err
		}
		ids = append(ids, id)
		lat = append(lat, time.Since(t0))
		done.Add(1)
	}
	lv.Elapsed = time.Since(start)
	lv.P50, lv.P99, lv.Max = percentiles(lat)
	lv.PostP50, lv.PostP99, _ = percentiles(post)
	return lv, ids, nil
}

// createConcurrent creates n VMs with inFlight creates outstanding at any
// time: each worker posts, waits until its VM runs, and posts the next.
func (c *vmClient) createConcurrent(ctx context.Context, n, inFlight int, interval time.Duration) (createLevel, []string, error) {
	lv := createLevel{InFlight: inFlight, VMs: n}
	var done atomic.Int64
	stop := startProgress(fmt.Sprintf("%d VM creates, %d in flight", n, inFlight), 0, func() string { return fmt.Sprintf("%d running", done.Load()) })
	defer stop()
	var w *runningWatcher
	if c.st.watch == watchSweep {
		lv.Method = fmt.Sprintf("GET /v1/vms?status=running swept every %s", interval)
		w = c.watchRunning(ctx, interval)
	} else {
		lv.Method = "GET /v1/events (vm_provisioned), then GET /v1/vms/{id} at its position"
		var err error
		if w, err = c.watchRunningLive(ctx, interval); err != nil {
			return lv, nil, err
		}
	}
	defer w.stop()
	var (
		mu        sync.Mutex
		lat, post []time.Duration
		ids       []string
		next      atomic.Int64
		timings   = make([]vmTiming, n)
	)
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for range inFlight {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return nil
				}
				t0 := time.Now()
				id, err := c.createVM(gctx, fmt.Sprintf("par-%d", i))
				if err != nil {
					return err
				}
				accepted := time.Since(t0)
				at, err := w.wait(gctx, id)
				if err != nil {
					return err
				}
				mu.Lock()
				lat, post, ids = append(lat, at.Sub(t0)), append(post, accepted), append(ids, id)
				timings[i] = vmTiming{id: id, sent: t0, accepted: t0.Add(accepted), seen: at}
				mu.Unlock()
				done.Add(1)
			}
		})
	}
	if err := g.Wait(); err != nil {
		return lv, nil, err
	}
	lv.Elapsed = time.Since(start)
	lv.P50, lv.P99, lv.Max = percentiles(lat)
	lv.PostP50, lv.PostP99, _ = percentiles(post)
	lv.lat, lv.post, lv.timings = lat, post, timings
	lv.Method += fmt.Sprintf(" (%d GETs)", w.requests.Load())
	return lv, ids, nil
}

// warmUp makes the run before a measured one (n creates at figure 5's
// concurrency, in a tenant of its own) unless -vm-no-warmup: the first
// burst after start waits for the pool's new backends, each loading its
// catalog caches and planning its statements (docs/BENCHMARKS.md, "Issue
// 16, seventh session"), which a service that has run for a minute has
// done. The run, marked Warmup, is reported as what a cold start costs.
func (b *bench) warmUp(ctx context.Context, st *vmStack, tenant string, n int) (createLevel, error) {
	if b.cfg.VMNoWarmup {
		return createLevel{}, nil
	}
	c, err := st.tenant(ctx, tenant)
	if err != nil {
		return createLevel{}, err
	}
	lv, _, err := c.createConcurrent(ctx, n, b.cfg.VMInFlight, b.cfg.VMPoll)
	lv.Warmup = err == nil
	return lv, err
}
