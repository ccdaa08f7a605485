package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sync/errgroup"
)

// Figure 10: issue 15's bar. N container consoles open at once through one
// core process (the real route: POST /v1/vms/{id}/console, then the
// WebSocket relayed to pvesim's vncwebsocket and termproxy), each typing
// at a person's pace; a keystroke's round trip is from sending one
// character to reading the shell's echo of it. Memory per open console is
// the heap the open consoles hold, read in this process.

const barConsoleP99 = 20 * time.Millisecond

type consoleConfig struct {
	Skip     bool
	Consoles int
	Interval time.Duration
	Duration time.Duration
}

func consoleFlags(fs *flag.FlagSet, c *consoleConfig) {
	fs.BoolVar(&c.Skip, "skip-console", false, "skip the console benchmark (figure 10)")
	fs.IntVar(&c.Consoles, "console-count", 50, "container consoles open at once, one per container")
	fs.DurationVar(&c.Interval, "console-interval", 100*time.Millisecond, "pause between one console's keystrokes (10/s is a fast typist)")
	fs.DurationVar(&c.Duration, "console-duration", 10*time.Second, "how long the consoles type")
}

func (c consoleConfig) validate() error {
	if c.Consoles < 1 || c.Interval <= 0 || c.Duration < time.Second {
		return errors.New("-console-count and -console-interval must be positive, -console-duration at least 1s")
	}
	return nil
}

type consoleResult struct {
	Consoles, Keystrokes int
	Interval, Elapsed    time.Duration
	P50, P99, Max        time.Duration
	OpenP99              time.Duration // POST console → prompt read
	HeapPerConsole       float64       // bytes
	GoroutinesPerConsole float64
}

// consolePhase boots a whole system, creates the containers, opens one
// console on each and types.
func (b *bench) consolePhase(ctx context.Context) (err error) {
	b.db.store.Pool().Reset()
	cfg := b.cfg.Console
	stopBoot := startProgress("starting core, agent and pvesim", 0, func() string { return "" })
	st, err := b.bootVMStack(ctx)
	stopBoot()
	if err != nil {
		return err
	}
	defer func() {
		if serr := st.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	c, err := st.tenant(ctx, "console")
	if err != nil {
		return err
	}
	ids := make([]string, cfg.Consoles)
	for i := range ids {
		var a acceptedAnswer
		code, err := c.do(ctx, http.MethodPost, "/v1/vms", map[string]any{"name": fmt.Sprintf("ct-%d", i), "kind": "lxc",
			"cores": 1, "memory_mb": 256, "disk_gb": 4, "template": "debian-12-ct"}, &a)
		if err != nil {
			return err
		}
		if code != http.StatusAccepted {
			return fmt.Errorf("create container %d: %d", i, code)
		}
		ids[i] = a.ID
	}
	for _, id := range ids {
		if err := c.waitRunning(ctx, id, 20*time.Millisecond); err != nil {
			return err
		}
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	consoles := make([]*benchConsole, len(ids))
	opens := make([]time.Duration, len(ids))
	for i, id := range ids {
		start := time.Now()
		if consoles[i], err = c.openConsole(ctx, id); err != nil {
			return err
		}
		opens[i] = time.Since(start)
		defer consoles[i].conn.Close()
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	res := &consoleResult{Consoles: len(ids), Interval: cfg.Interval,
		HeapPerConsole:       float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / float64(len(ids)),
		GoroutinesPerConsole: float64(runtime.NumGoroutine()-goroutines) / float64(len(ids))}
	slices.Sort(opens)
	res.OpenP99 = opens[len(opens)*99/100]

	var mu sync.Mutex
	var rtts []time.Duration
	stopTyping := startProgress("typing in the consoles", cfg.Duration, func() string { return "" })
	started := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for _, con := range consoles {
		g.Go(func() error {
			local, err := con.typeFor(gctx, cfg.Duration, cfg.Interval)
			mu.Lock()
			rtts = append(rtts, local...)
			mu.Unlock()
			return err
		})
	}
	err = g.Wait()
	stopTyping()
	if err != nil {
		return err
	}
	res.Elapsed = time.Since(started)
	if len(rtts) == 0 {
		return errors.New("console: no keystroke came back")
	}
	slices.Sort(rtts)
	res.Keystrokes, res.P50, res.P99, res.Max = len(rtts), rtts[len(rtts)/2], rtts[len(rtts)*99/100], rtts[len(rtts)-1]
	b.rep.Console = res
	return nil
}

// benchConsole is one open container console: the relayed termproxy
// stream, read byte by byte whatever its message boundaries.
type benchConsole struct {
	conn *websocket.Conn
	buf  bytes.Buffer
}

// openConsole asks for a ticket, opens its WebSocket and reads up to the
// shell's first prompt.
func (c *vmClient) openConsole(ctx context.Context, id string) (*benchConsole, error) {
	var t struct {
		URL string `json:"url"`
	}
	code, err := c.do(ctx, http.MethodPost, "/v1/vms/"+id+"/console", nil, &t)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("console of %s: %d", id, code)
	}
	d := websocket.Dialer{Subprotocols: []string{"binary"}, HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.DialContext(ctx, strings.Replace(c.st.url, "http://", "ws://", 1)+t.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("console of %s: %w", id, err)
	}
	con := &benchConsole{conn: conn}
	if err := con.readUntil(":~# "); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("console of %s: %w", id, err)
	}
	return con, nil
}

func (con *benchConsole) readUntil(want string) error {
	for !strings.Contains(con.buf.String(), want) {
		if err := con.read(); err != nil {
			return err
		}
	}
	con.buf.Reset()
	return nil
}

func (con *benchConsole) read() error {
	_ = con.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, m, err := con.conn.ReadMessage()
	con.buf.Write(m)
	return err
}

// typeFor types until d has passed, one keystroke every interval: a letter,
// then a backspace (so the shell's line never fills), each timed from its
// send to its whole echo ("a", then "\b \b").
func (con *benchConsole) typeFor(ctx context.Context, d, interval time.Duration) ([]time.Duration, error) {
	keys := []struct{ in, echo string }{{"0:1:a", "a"}, {"0:1:\x7f", "\b \b"}}
	var rtts []time.Duration
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i, end := 0, time.Now().Add(d); time.Now().Before(end); i++ {
		k := keys[i%2]
		start := time.Now()
		if err := con.conn.WriteMessage(websocket.BinaryMessage, []byte(k.in)); err != nil {
			return rtts, err
		}
		for con.buf.Len() < len(k.echo) {
			if err := con.read(); err != nil {
				return rtts, fmt.Errorf("echo of a keystroke: %w", err)
			}
		}
		if got := string(con.buf.Next(len(k.echo))); got != k.echo {
			return rtts, fmt.Errorf("echo %q, want %q", got, k.echo)
		}
		rtts = append(rtts, time.Since(start))
		select {
		case <-ctx.Done():
			return rtts, ctx.Err()
		case <-tick.C:
		}
	}
	return rtts, nil
}

func (r *consoleResult) print(out io.Writer) {
	fmt.Fprintf(out, "10. Consoles: %d container consoles at once through the core (ticket, WebSocket relay, pvesim termproxy), one keystroke each per %s\n",
		r.Consoles, r.Interval)
	fmt.Fprintf(out, "   %d keystrokes in %s: round trip (sent → echo read) p50 %s  p99 %s  max %s; opening one (POST → prompt) p99 %s\n",
		r.Keystrokes, r.Elapsed.Round(time.Millisecond), ms(r.P50), ms(r.P99), ms(r.Max), ms(r.OpenP99))
	fmt.Fprintf(out, "   per open console, client + core relay + pvesim in this process: %.1f KiB of heap, %.1f goroutines\n\n",
		r.HeapPerConsole/1024, r.GoroutinesPerConsole)
}

func (r *consoleResult) printBars(out *os.File) {
	verdict(out, fmt.Sprintf("%d consoles: keystroke round trip p99 ≤ %s", r.Consoles, barConsoleP99), r.P99 <= barConsoleP99, ms(r.P99))
}
