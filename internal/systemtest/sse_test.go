package systemtest

import (
	"bufio"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// follower is an SSE client of GET /v1/events that keeps every event id it
// receives, across reconnections: what a browser's EventSource does, with
// Last-Event-ID, when the instance it was connected to goes away.
type follower struct {
	t     *testing.T
	token string

	mu   sync.Mutex
	ids  []int64
	done chan struct{} // closed when the current connection ends
}

// follow connects to base from the start of the log.
func follow(t *testing.T, base, token string) *follower {
	f := &follower{t: t, token: token}
	f.connect(base, "0")
	return f
}

func (f *follower) connect(base, lastID string) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/events", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.token)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", lastID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		f.t.Fatalf("GET %s/v1/events: %v", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		f.t.Fatalf("GET %s/v1/events: %d", base, resp.StatusCode)
	}
	done := make(chan struct{})
	f.mu.Lock()
	f.done = done
	f.mu.Unlock()
	f.t.Cleanup(cancel)
	go func() {
		defer close(done)
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if v, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "id:"); ok {
				id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err == nil {
					f.mu.Lock()
					f.ids = append(f.ids, id)
					f.mu.Unlock()
				}
			}
		}
	}()
}

// ended is closed when the current connection ends.
func (f *follower) ended() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done
}

// resume reconnects to base from the last id received.
func (f *follower) resume(base string) {
	f.connect(base, strconv.FormatInt(f.last(), 10))
}

func (f *follower) last() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ids) == 0 {
		return 0
	}
	return f.ids[len(f.ids)-1]
}

func (f *follower) received() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ids)
}
