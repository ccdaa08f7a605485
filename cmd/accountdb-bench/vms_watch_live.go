package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/accountdb/accountdb/eventlog"
)

// watchRunningLive follows the tenant's live feed (GET /v1/events) for the
// VMs whose create has completed (vm_provisioned) and reads each from the
// read model at that event's position (GET /v1/vms/{id} with
// X-Consistency-Token), noting when it first reads it running: the
// console's way (web/static/vms.js), one GET per VM, where the sweep
// (watchRunning) lists every running VM of the tenant every few
// milliseconds. -vm-watch live; not the default: at 50 creates in flight
// it measured no cheaper than the sweep (each GET waits for its position,
// and the feed has its own cost), and the sweep is what every earlier
// figure used (docs/BENCHMARKS.md, issue 16, thirteenth session).
func (c *vmClient) watchRunningLive(ctx context.Context, interval time.Duration) (*runningWatcher, error) {
	w := &runningWatcher{seen: map[string]time.Time{}, waiters: map[string]chan time.Time{}}
	wctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(wctx, http.MethodGet, c.st.url+"/v1/events?type=vm_provisioned", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	// The feed lives as long as the run: not under the client's timeout.
	resp, err := (&http.Client{Transport: c.st.client.Transport}).Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("GET /v1/events: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET /v1/events: %d", resp.StatusCode)
	}
	done := make(chan struct{})
	w.stop = func() { cancel(); <-done }
	go func() {
		defer close(done)
		defer resp.Body.Close()
		var position, data string
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				position = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "" && data != "":
				var e struct {
					StreamID string `json:"stream_id"`
				}
				if err := json.Unmarshal([]byte(data), &e); err != nil {
					w.fail(fmt.Errorf("event feed: %w", err))
					return
				}
				stream, err := eventlog.ParseStreamID(e.StreamID)
				if err != nil {
					w.fail(fmt.Errorf("event feed: %w", err))
					return
				}
				go c.readRunning(wctx, w, stream.ID.String(), position, interval)
				position, data = "", ""
			}
		}
		if wctx.Err() == nil {
			w.fail(fmt.Errorf("event feed ended: %v", sc.Err()))
		}
	}()
	return w, nil
}

// readRunning reads VM id from the read model at position until it runs
// (the read model has the event, so at once but for a failed create),
// and notes when.
func (c *vmClient) readRunning(ctx context.Context, w *runningWatcher, id, position string, interval time.Duration) {
	for ctx.Err() == nil {
		var v vmAnswer
		w.requests.Add(1)
		code, err := c.doWith(ctx, http.MethodGet, "/v1/vms/"+id, map[string]string{"X-Consistency-Token": position}, nil, &v)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				w.fail(err)
			}
			return
		case code == http.StatusOK && v.Status == "running":
			w.saw(id, time.Now())
			return
		case code != http.StatusOK:
			w.fail(fmt.Errorf("get VM %s: %d", id, code))
			return
		}
		if sleepCtx(ctx, interval) != nil {
			return
		}
	}
}
