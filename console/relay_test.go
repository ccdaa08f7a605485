package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// echoGuest stands in for Proxmox's side: it echoes every message.
func echoGuest(t testing.TB) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			typ, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if c.WriteMessage(typ, m) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

type relayResult struct {
	stats  Stats
	reason string
}

// relayServer relays each browser connection to the guest with Relay and
// reports how each ended.
func relayServer(t testing.TB, guest string, idle time.Duration, ctx context.Context) (string, chan relayResult) {
	results := make(chan relayResult, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g, _, err := websocket.DefaultDialer.Dial(guest, nil)
		if err != nil {
			t.Errorf("dial guest: %v", err)
			return
		}
		b, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		stats, reason := Relay(ctx, b, g, idle)
		results <- relayResult{stats, reason}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), results
}

func TestRelayCopiesBothWaysAndCounts(t *testing.T) {
	url, results := relayServer(t, echoGuest(t), time.Hour, context.Background())
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"RFB 003.008\n", "\x00\x01\x02"} {
		if err := c.WriteMessage(websocket.BinaryMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.ReadMessage()
		if err != nil || string(got) != m || typ != websocket.BinaryMessage {
			t.Fatalf("echo %q: %d %q %v", m, typ, got, err)
		}
	}
	_ = c.Close()
	r := <-results
	if r.reason != ReasonClientClosed || r.stats.In != 15 || r.stats.Out != 15 {
		t.Fatalf("relay ended %+v", r)
	}
}

func TestRelayEndsWithTheGivenReasonOrWhenIdle(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	url, results := relayServer(t, echoGuest(t), time.Hour, ctx)
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	End(cancel, ReasonSessionEnded)
	_, _, err = c.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != websocket.ClosePolicyViolation || ce.Text != ReasonSessionEnded {
		t.Fatalf("close: %v", err)
	}
	if r := <-results; r.reason != ReasonSessionEnded {
		t.Fatalf("relay ended %+v", r)
	}

	url, results = relayServer(t, echoGuest(t), 50*time.Millisecond, context.Background())
	if c, _, err = websocket.DefaultDialer.Dial(url, nil); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Text != ReasonIdle {
		t.Fatalf("close: %v", err)
	}
	if r := <-results; r.reason != ReasonIdle {
		t.Fatalf("relay ended %+v", r)
	}
}

// BenchmarkRelayKeystrokes: 50 consoles open at once through one relay
// process, each sending keystroke-sized messages and waiting for the echo;
// reports the round trip's p50/p99 and the heap held per open console.
func BenchmarkRelayKeystrokes(b *testing.B) {
	const consoles = 50
	url, _ := relayServer(b, echoGuest(b), time.Hour, context.Background())
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	conns := make([]*websocket.Conn, consoles)
	for i := range conns {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = c
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ResetTimer()
	var mu sync.Mutex
	var rtts []time.Duration
	var wg sync.WaitGroup
	per := max(b.N/consoles, 1)
	for _, c := range conns {
		wg.Add(1)
		go func(c *websocket.Conn) {
			defer wg.Done()
			local := make([]time.Duration, 0, per)
			for range per {
				start := time.Now()
				if c.WriteMessage(websocket.BinaryMessage, []byte("0:1:a")) != nil {
					return
				}
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
				local = append(local, time.Since(start))
			}
			mu.Lock()
			rtts = append(rtts, local...)
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	b.StopTimer()
	for _, c := range conns {
		_ = c.Close()
	}
	if len(rtts) == 0 {
		b.Fatal("no round trip completed")
	}
	slices.Sort(rtts)
	b.ReportMetric(float64(rtts[len(rtts)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(rtts[len(rtts)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/consoles/1024, "KiB-heap/console")
}
