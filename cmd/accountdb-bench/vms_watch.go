package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// runningWatcher sweeps the tenant's running VMs (GET /v1/vms?status=running,
// every page) every interval and notes when each first appears: one client
// watching many VMs, where a poller per VM would load the server with
// thousands of GETs a second and slow what it measures.
type runningWatcher struct {
	requests atomic.Int64 // GETs sent
	mu       sync.Mutex
	seen     map[string]time.Time
	waiters  map[string]chan time.Time
	err      error
	stop     func()
}

func (c *vmClient) watchRunning(ctx context.Context, interval time.Duration) *runningWatcher {
	w := &runningWatcher{seen: map[string]time.Time{}, waiters: map[string]chan time.Time{}}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	w.stop = func() { cancel(); <-done }
	go func() {
		defer close(done)
		for wctx.Err() == nil {
			if err := w.sweep(wctx, c); err != nil {
				if wctx.Err() == nil {
					w.fail(err)
				}
				return
			}
			_ = sleepCtx(wctx, interval)
		}
	}()
	return w
}

// sweep reads every page of the tenant's running VMs once and notes those
// not seen before.
func (w *runningWatcher) sweep(ctx context.Context, c *vmClient) error {
	cursor := ""
	for {
		var l struct {
			Items      []vmAnswer `json:"items"`
			NextCursor *string    `json:"next_cursor"`
		}
		path := "/v1/vms?status=running&limit=200"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		w.requests.Add(1)
		code, err := c.do(ctx, http.MethodGet, path, nil, &l)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("list running VMs: %d", code)
		}
		if err != nil {
			return err
		}
		now := time.Now()
		for _, v := range l.Items {
			w.saw(v.ID, now)
		}
		if l.NextCursor == nil || *l.NextCursor == "" {
			return nil
		}
		cursor = *l.NextCursor
	}
}

// saw notes that id was first seen running at, unless seen before.
func (w *runningWatcher) saw(id string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.seen[id]; ok {
		return
	}
	w.seen[id] = at
	if ch, ok := w.waiters[id]; ok {
		ch <- at
	}
}

func (w *runningWatcher) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = err
	for _, ch := range w.waiters {
		close(ch)
	}
	w.waiters = map[string]chan time.Time{}
}

// wait returns when the watcher first saw id running.
func (w *runningWatcher) wait(ctx context.Context, id string) (time.Time, error) {
	w.mu.Lock()
	if at, ok := w.seen[id]; ok {
		w.mu.Unlock()
		return at, nil
	}
	if w.err != nil {
		w.mu.Unlock()
		return time.Time{}, w.err
	}
	ch := make(chan time.Time, 1)
	w.waiters[id] = ch
	w.mu.Unlock()
	t := time.NewTimer(runningLimit)
	defer t.Stop()
	select {
	case at, ok := <-ch:
		if !ok {
			return time.Time{}, w.err
		}
		return at, nil
	case <-t.C:
		return time.Time{}, fmt.Errorf("VM %s not running after %s", id, runningLimit)
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}
