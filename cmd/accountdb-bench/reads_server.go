package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/api/pglimits"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/tenantdb"
)

// Figure 12's server runs in a process of its own (this binary again, with
// readsServerEnv set), so its RSS and CPU time are its own and not the load
// generator's. It serves the API as `accountdb serve` wires it (app.Start):
// the same command handler, the service role's pool of
// app.DefaultPoolSize() kept open, the token verifier, the limits shared
// through PostgreSQL (api/pglimits) and a JSON access log at info level; it leaves out NATS and the components
// that read it (relay, projectors, the event feed), which no read touches.
const (
	readsServerEnv    = "ACCOUNTDB_BENCH_READS_SERVER"
	readsServerDB     = "ACCOUNTDB_BENCH_READS_DB"     // the service role's URL
	readsServerKey    = "ACCOUNTDB_BENCH_READS_KEY"    // the signing key, PEM
	readsServerCursor = "ACCOUNTDB_BENCH_READS_CURSOR" // the cursor key, hex
	// readsApplicationName names the server's connections, whose backends
	// the CPU meter reads.
	readsApplicationName = "accountdb-bench-reads"
)

// readsServerMain is the child's main: it prints "ready <api> <pprof>" on
// stdout and serves until its standard input closes (the parent exited or
// is done with it).
func readsServerMain() int {
	if err := serveReads(); err != nil {
		fmt.Fprintln(os.Stderr, "reads server:", err)
		return 1
	}
	return 0
}

func serveReads() error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	key, err := auth.ParsePrivateKeyPEM([]byte(os.Getenv(readsServerKey)))
	if err != nil {
		return err
	}
	keys, err := auth.NewKeySet(key)
	if err != nil {
		return err
	}
	cursorKey, err := hex.DecodeString(os.Getenv(readsServerCursor))
	if err != nil {
		return err
	}
	rates, err := readsServerRates()
	if err != nil {
		return err
	}
	pool, err := tenantdb.Open(ctx, os.Getenv(readsServerDB), tenantdb.PoolOptions{MaxConns: app.DefaultPoolSize(), MinConns: app.DefaultPoolSize(), ApplicationName: readsApplicationName})
	if err != nil {
		return err
	}
	defer pool.Close()
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	store := app.NewStore(eventstore.New(pool, nil))
	limits := pglimits.New(pool, log)
	handler := api.NewHandler(api.Deps{Logger: log, CursorKey: cursorKey,
		V1: &api.V1{Commands: app.NewCommandHandler(store, keys).WithLogger(log), Pool: pool, Store: store,
			Verifier: &auth.Verifier{Keys: keys}, PublicRate: rates[0], UserRate: rates[1], TenantRate: rates[2],
			Limits: api.DefaultLimits, RateCounter: limits, Slots: limits}})

	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	profLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	lim := api.DefaultLimits
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: lim.ReadHeaderTimeout, ReadTimeout: lim.ReadTimeout,
		WriteTimeout: lim.WriteTimeout, IdleTimeout: lim.IdleTimeout}
	prof := http.NewServeMux()
	prof.HandleFunc("/debug/pprof/profile", pprof.Profile)
	prof.HandleFunc("/debug/pprof/heap", pprof.Index)
	prof.HandleFunc("/debug/pprof/allocs", pprof.Index)
	go func() { _ = srv.Serve(apiLn) }()
	go func() { _ = http.Serve(profLn, prof) }()
	go func() { _ = limits.Run(ctx) }()
	fmt.Printf("ready http://%s http://%s\n", apiLn.Addr(), profLn.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	return srv.Shutdown(sctx)
}

// readsServerRates are the public, user and tenant rates from the
// environment variables `accountdb serve` reads (ACCOUNTDB_RATE_*).
func readsServerRates() ([3]api.RateLimit, error) {
	var out [3]api.RateLimit
	for i, name := range []string{"ACCOUNTDB_RATE_PUBLIC", "ACCOUNTDB_RATE_USER", "ACCOUNTDB_RATE_TENANT"} {
		if v := os.Getenv(name); v != "" {
			l, err := api.ParseRateLimit(v)
			if err != nil {
				return out, fmt.Errorf("%s: %w", name, err)
			}
			out[i] = l
		}
	}
	return out, nil
}

// readsServer is the parent's handle on the child.
type readsServer struct {
	url, pprofURL string
	cmd           *exec.Cmd
	stdin         io.Closer
	stderr        *tailBuffer
}

// startReadsServer starts the child with the bench database, the signing
// key the bench issues tokens with, and request rates no load here reaches
// (set as an operator would: ACCOUNTDB_RATE_USER and ACCOUNTDB_RATE_TENANT).
func startReadsServer(ctx context.Context, appURL string, keyPEM, cursorKey []byte) (*readsServer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), readsServerEnv+"=1", readsServerDB+"="+appURL, readsServerKey+"="+string(keyPEM),
		readsServerCursor+"="+hex.EncodeToString(cursorKey),
		"ACCOUNTDB_RATE_USER=1000000000/1m", "ACCOUNTDB_RATE_TENANT=1000000000/1m")
	s := &readsServer{cmd: cmd, stderr: &tailBuffer{max: 1 << 20}}
	cmd.Stderr = s.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s.stdin = stdin
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 3 || f[0] != "ready" {
		s.stop()
		return nil, fmt.Errorf("reads server did not start (%v): %s", err, s.stderr.String())
	}
	s.url, s.pprofURL = f[1], f[2]
	return s, nil
}

func (s *readsServer) stop() {
	_ = s.stdin.Close()
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// procStatus reads a field of the child's /proc status in kB (VmRSS, VmHWM).
func (s *readsServer) procStatus(field string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSuffix(procField(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid), field), " kB"), 10, 64)
	return n
}

// cpuTime is the CPU time the child has used (user + system).
func (s *readsServer) cpuTime() time.Duration { return procCPUTime(s.cmd.Process.Pid) }

// procCPUTime is a process's user + system time from /proc/<pid>/stat;
// zero if it cannot be read.
func procCPUTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: the fields start after its ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b)[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / clockTicks)
}

// clockTicks is USER_HZ, 100 on every Linux platform Go supports.
const clockTicks = 100

// profile saves a CPU profile of the child over d to path, and what it
// allocated meanwhile (a delta of the allocs profile) to path with
// ".allocs" before its extension.
func (s *readsServer) profile(ctx context.Context, d time.Duration, path string) error {
	secs := int(d.Seconds())
	allocs := make(chan error, 1)
	go func() {
		allocs <- s.fetchProfile(ctx, fmt.Sprintf("%s/debug/pprof/allocs?seconds=%d", s.pprofURL, secs),
			strings.TrimSuffix(path, ".pprof")+".allocs.pprof")
	}()
	err := s.fetchProfile(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", s.pprofURL, secs), path)
	return errors.Join(err, <-allocs)
}

func (s *readsServer) fetchProfile(ctx context.Context, u, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s", u, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

// tailBuffer keeps at least the last max/2 bytes written to it (the
// child's log, for the error message if it fails), trimming by halves so
// that a busy access log costs little.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max/2:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
