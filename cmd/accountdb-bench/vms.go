package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/accountdb/accountdb/agent"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/projections"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
)

// Figure 5 is the whole system over HTTP: the core (app.System: command
// handler, relay, ingest, projectors, API), the Proxmox agent and pvesim, all
// in this process, against a fresh database and an embedded NATS server.

// barProjectionLagP99 is the projection-lag bar at barCommandRate commands/s.
const (
	barProjectionLagP99 = 100 * time.Millisecond
	barCommandRate      = 200
)

// vmResult is figure 5.
type vmResult struct {
	AgentConcurrency int
	Creates          []createLevel
	Lags             []lagResult
}

// createLevel is create-to-running latency at one concurrency: POST /v1/vms
// sent → the client first sees the VM running.
type createLevel struct {
	InFlight int
	VMs      int
	Elapsed  time.Duration
	Method   string // how the client watched for running
	P50, P99 time.Duration
	Max      time.Duration
	PostP50  time.Duration // POST → 202
	PostP99  time.Duration
	// Warmup marks the run made before the measured one, on the system as
	// started: it is reported, not judged against the bar.
	Warmup bool
	// lat and post are the samples behind the percentiles (figure 5b
	// pools runs).
	lat, post []time.Duration
	// timings are each VM's moments, in the order they were sent
	// (stages.go); stages what they show.
	timings []vmTiming
	stages  *stageReport
	// cpuPerVM is this process's CPU time (core, agent, pvesim, NATS and
	// the client) per VM over the level, when measured.
	cpuPerVM time.Duration
	// pgCPUPerVM is the CPU time of the database's backends per VM.
	pgCPUPerVM time.Duration
}

func (l createLevel) Rate() float64 { return float64(l.VMs) / l.Elapsed.Seconds() }

// lagResult is projection lag under paced commands: 202 received → the vms
// read model's checkpoint has reached the command's position.
type lagResult struct {
	Mode       string // what the commands were
	TargetRate float64
	Duration   time.Duration
	Pool       int // running VMs the reboots cycle through
	Commands   int // accepted (202)
	Conflicts  int // 422: the VM's previous reboot not finished yet
	Elapsed    time.Duration
	P50, P99   time.Duration
	Max        time.Duration
	PostP99    time.Duration
	Polls      int // checkpoint reads by the watcher
}

func (r lagResult) Rate() float64 { return float64(r.Commands) / r.Elapsed.Seconds() }

// vmStack is the running system.
type vmStack struct {
	db      *benchDB
	sys     *app.System
	url     string
	client  *http.Client
	cpPool  *pgxpool.Pool // the checkpoint watcher's own connections
	cluster uuid.UUID
	natsURL string
	metrics *prometheus.Registry // the agent's
	stop    func() error
	// stopAgent stops the in-process agent (idempotent).
	stopAgent func()
	watch     string // config.VMWatch
}

// How the concurrent creates' client learns that a VM runs (-vm-watch).
const (
	watchLive  = "live"
	watchSweep = "sweep"
)

// bootVMStack starts the system the way cmd/accountdb dev does, tuned for
// measurement: pvesim finishes every task at once and has room for
// thousands of guests, the agent polls tasks every few milliseconds.
func (b *bench) bootVMStack(ctx context.Context) (*vmStack, error) {
	return b.bootVMStackWith(ctx, vmStackConfig{})
}

// vmStackConfig varies the stack of bootVMStack: the simulated cluster's
// nodes and the guests it already runs, and the registry the agent's
// metrics go to (nil: none kept).
type vmStackConfig struct {
	Nodes, Guests int
	Metrics       *prometheus.Registry
}

func (b *bench) bootVMStackWith(ctx context.Context, sc vmStackConfig) (_ *vmStack, err error) {
	st := &vmStack{watch: b.cfg.VMWatch}
	var cleanups cleanupStack
	st.stop = cleanups.run
	defer func() {
		if err != nil {
			_ = st.stop()
		}
	}()
	core, err := startCore(ctx, b.cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, core.stop)
	st.db, st.sys, st.url, st.natsURL = core.db, core.sys, core.sys.URL(), core.natsURL
	if sc.Metrics == nil {
		sc.Metrics = prometheus.NewRegistry()
	}
	st.metrics = sc.Metrics
	st.db.store.Pool().Reset() // the core has a pool of its own

	sim, err := pvesim.StartServer(pvesim.Options{TimeScale: 0, NodeCores: 4096, NodeMemory: 1 << 44, NodeStorage: 1 << 50,
		Nodes: sc.Nodes, Guests: sc.Guests}, "127.0.0.1:0", true)
	if err != nil {
		return nil, fmt.Errorf("pvesim: %w", err)
	}
	cleanups = append(cleanups, sim.Close)
	res, err := st.sys.Commands.RegisterCluster(ctx, platformActor(), commands.Options{}, commands.NewCluster{Name: "pvesim",
		APIURL: sim.URL(), TokenID: pvesim.DefaultTokenID, TokenSecret: pvesim.DefaultTokenSecret, TLSFingerprint: domain.CertificateFingerprint(sim.Certificate())})
	if err != nil {
		return nil, fmt.Errorf("register the pvesim cluster: %w", err)
	}
	st.cluster = res.ID

	nc, err := nats.Connect(core.natsURL, nats.Name("accountdb-bench-agent"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("agent nats: %w", err)
	}
	cleanups = append(cleanups, func() error { nc.Close(); return nil })
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ag, err := agent.New(agent.Config{JS: js, Vault: core.vault, Logger: core.log.With("component", "agent"),
		Concurrency: b.cfg.VMAgentConcurrency, ReconcileInterval: 10 * time.Second, TaskPollInterval: 5 * time.Millisecond,
		RetryBaseDelay: 20 * time.Millisecond, RetryMaxDelay: 500 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
		Registerer: registererOf(sc.Metrics)})
	if err != nil {
		return nil, err
	}
	agentDone := make(chan error, 1)
	agentCtx, cancelAgent := context.WithCancel(context.WithoutCancel(ctx))
	go func() { agentDone <- ag.Run(agentCtx) }()
	var (
		agentOnce sync.Once
		agentErr  error
	)
	st.stopAgent = func() {
		agentOnce.Do(func() {
			cancelAgent()
			if err := <-agentDone; err != nil && !errors.Is(err, context.Canceled) {
				agentErr = fmt.Errorf("agent: %w", err)
			}
		})
	}
	cleanups = append(cleanups, func() error {
		st.stopAgent()
		return agentErr
	})

	if st.cpPool, err = tenantdb.Open(ctx, st.db.appURL, tenantdb.PoolOptions{MaxConns: 2, ApplicationName: "accountdb-bench-watch"}); err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() error { st.cpPool.Close(); return nil })
	// Keep-alive connections for every request in flight: the default two
	// idle connections per host would make most requests dial anew.
	st.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}}
	cleanups = append(cleanups, func() error { st.client.CloseIdleConnections(); return nil })
	return st, nil
}

func platformActor() commands.Actor {
	return commands.Actor{TenantID: domain.PlatformTenant, Roles: []string{auth.RolePlatformAdmin}}
}

// vmClient is a tenant's vm_admin, logged in over HTTP.
type vmClient struct {
	st    *vmStack
	token string
}

// tenant creates a tenant whose quota no phase reaches and a vm_admin, logs
// in, and waits until the agent's inventory has offered the templates.
func (st *vmStack) tenant(ctx context.Context, name string) (*vmClient, error) {
	big := 100_000_000
	t, err := st.sys.Commands.CreateTenant(ctx, platformActor(), commands.Options{}, name,
		domain.Quota{MaxVMs: big, MaxCores: big, MaxMemoryMB: big, MaxDiskGB: big})
	if err != nil {
		return nil, fmt.Errorf("tenant: %w", err)
	}
	email, password := "bench-"+randomHex(4)+"@example.com", "pw-"+randomHex(16)
	if _, err := st.sys.Commands.CreateUser(ctx, platformActor(), commands.Options{}, commands.NewUser{TenantID: t.ID,
		Email: email, DisplayName: "Bench", Password: password, Roles: []string{auth.RoleVMAdmin}}); err != nil {
		return nil, fmt.Errorf("user: %w", err)
	}
	c := &vmClient{st: st}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	// The users read model may lag the command by a moment.
	for deadline := time.Now().Add(20 * time.Second); ; {
		code, err := c.do(ctx, http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": password}, &tok)
		if err != nil {
			return nil, err
		}
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("login: %d", code)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return nil, err
		}
	}
	c.token = tok.AccessToken
	for deadline := time.Now().Add(30 * time.Second); ; {
		var l struct{ Items []json.RawMessage }
		code, err := c.do(ctx, http.MethodGet, "/v1/templates", nil, &l)
		if err != nil {
			return nil, err
		}
		if code == http.StatusOK && len(l.Items) > 0 {
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, errors.New("no templates from the agent's inventory after 30s")
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// do sends a JSON request and decodes a 2xx JSON answer into out.
func (c *vmClient) do(ctx context.Context, method, path string, body, out any) (int, error) {
	return c.doWith(ctx, method, path, nil, body, out)
}

// doWith is do with more headers.
func (c *vmClient) doWith(ctx context.Context, method, path string, headers map[string]string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.st.url+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.st.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if out != nil && resp.StatusCode/100 == 2 && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return 0, fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

type acceptedAnswer struct {
	ID            string `json:"id"`
	StreamVersion int64  `json:"stream_version"`
	Position      int64  `json:"position"`
}

type vmAnswer struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	LastError string `json:"last_error"`
}

// createVM posts one small qemu VM and returns its id.
func (c *vmClient) createVM(ctx context.Context, name string) (string, error) {
	var a acceptedAnswer
	code, err := c.do(ctx, http.MethodPost, "/v1/vms", map[string]any{"name": name, "kind": "qemu", "cores": 1,
		"memory_mb": 256, "disk_gb": 5, "template": "debian-12"}, &a)
	if err != nil {
		return "", err
	}
	if code != http.StatusAccepted {
		return "", fmt.Errorf("create %s: %d", name, code)
	}
	return a.ID, nil
}

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

// checkpointSeen is one change of the vms projector's checkpoint, with the
// moment the watcher read it.
type checkpointSeen struct {
	at  time.Time
	pos eventlog.Position
}

// watchCheckpoint reads the vms projector's checkpoint every interval and
// records each change until finish is called (again, it returns the same).
func (st *vmStack) watchCheckpoint(ctx context.Context, interval time.Duration) (latest func() eventlog.Position,
	finish func() ([]checkpointSeen, int, error)) {
	var (
		mu    sync.Mutex
		seen  []checkpointSeen
		polls int
		werr  error
	)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	name := projections.VMs{}.Name()
	go func() {
		defer close(done)
		for {
			cp, err := projections.ReadCheckpoint(wctx, st.cpPool, name)
			now := time.Now()
			if err != nil {
				if wctx.Err() == nil {
					mu.Lock()
					werr = err
					mu.Unlock()
				}
				return
			}
			mu.Lock()
			polls++
			if n := len(seen); n == 0 || seen[n-1].pos != cp.Position {
				seen = append(seen, checkpointSeen{at: now, pos: cp.Position})
			}
			mu.Unlock()
			if sleepCtx(wctx, interval) != nil {
				return
			}
		}
	}()
	latest = func() eventlog.Position {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return eventlog.Start
		}
		return seen[len(seen)-1].pos
	}
	stop := sync.OnceFunc(func() { cancel(); <-done })
	finish = func() ([]checkpointSeen, int, error) {
		stop()
		return seen, polls, werr
	}
	return latest, finish
}

// pooledVM is a running VM and the client of its tenant.
type pooledVM struct {
	c  *vmClient
	id string
}

// trackFreeVMs hands out the VMs of pool that can take a reboot: at first
// all; then a VM marked busy(v, version) comes back once the vms table shows
// it at that version or later with no action pending (read every 10ms, as the
// administrator). Commands are sent only to VMs that can take them: a VM
// whose reboot is still pending answers 422, and such refusals would load
// the core without appending anything.
func (st *vmStack) trackFreeVMs(ctx context.Context, pool []pooledVM) (free chan pooledVM, busy func(pooledVM, int64), stop func(), err error) {
	conn, err := pgx.Connect(ctx, st.db.adminURL)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("free VM tracker: %w", err)
	}
	free = make(chan pooledVM, len(pool))
	for _, v := range pool {
		free <- v
	}
	var (
		mu      sync.Mutex
		waiting = map[string]vmWait{}
	)
	busy = func(v pooledVM, version int64) {
		mu.Lock()
		waiting[v.id] = vmWait{v: v, version: version, since: time.Now()}
		mu.Unlock()
	}
	tctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer conn.Close(context.Background())
		for sleepCtx(tctx, 10*time.Millisecond) == nil {
			rows, err := conn.Query(tctx, `SELECT vm_id::text, version, pending FROM vms`)
			if err != nil {
				continue
			}
			now := time.Now()
			mu.Lock()
			for rows.Next() {
				var (
					id      string
					version int64
					pending string
				)
				if rows.Scan(&id, &version, &pending) != nil {
					continue
				}
				// A refused VM waits a moment: the row read may predate
				// the request that keeps it busy.
				if w, ok := waiting[id]; ok && pending == "" && version >= w.version && now.Sub(w.since) >= 20*time.Millisecond {
					delete(waiting, id)
					free <- w.v
				}
			}
			mu.Unlock()
			rows.Close()
		}
	}()
	return free, busy, func() { cancel(); <-done }, nil
}

type vmWait struct {
	v       pooledVM
	version int64
	since   time.Time
}

// issued is one accepted command: its position, when its 202 arrived and
// how long after the request was sent.
type issued struct {
	global   int64
	pos      eventlog.Position
	accepted time.Time
	post     time.Duration
}

// projectionLag reboots the VMs of pool at a paced rate for d and measures,
// for each accepted command, how long after its 202 the vms read model has
// applied its position.
func (st *vmStack) projectionLag(ctx context.Context, pool []pooledVM, rateN float64, d, interval time.Duration) (lagResult, error) {
	res := lagResult{TargetRate: rateN, Duration: d, Pool: len(pool), Mode: "reboots, whole system"}
	var conflicts atomic.Int64
	free, busy, stopTracker, err := st.trackFreeVMs(ctx, pool)
	if err != nil {
		return res, err
	}
	defer stopTracker()
	res, err = st.pacedLag(ctx, res, "VM reboots", interval, func(accepted int) string {
		return fmt.Sprintf("%d accepted, %d conflicts", accepted, conflicts.Load())
	}, func(gctx context.Context) (issued, error) {
		// A VM whose previous reboot is still pending answers 422 (invalid
		// state): take another, within the same slot.
		for {
			var v pooledVM
			select {
			case v = <-free:
			case <-gctx.Done():
				return issued{}, gctx.Err()
			}
			var a acceptedAnswer
			t0 := time.Now()
			code, err := v.c.do(gctx, http.MethodPost, "/v1/vms/"+v.id+"/actions/reboot", nil, &a)
			if err != nil {
				return issued{}, err
			}
			now := time.Now()
			if code == http.StatusUnprocessableEntity {
				conflicts.Add(1)
				busy(v, 0)
				continue
			}
			if code != http.StatusAccepted {
				return issued{}, fmt.Errorf("reboot %s: %d", v.id, code)
			}
			// Free again once the read model shows the reboot's result, the
			// event after the request.
			busy(v, a.StreamVersion+1)
			return issued{global: a.Position, accepted: now, post: now.Sub(t0)}, nil
		}
	})
	res.Conflicts = int(conflicts.Load())
	return res, err
}

// pacedLag calls send at res.TargetRate for res.Duration, while the vms
// projector's checkpoint is read every interval, and measures the projection
// lag of the commands accepted. label names the commands in the progress
// line, status tells how many were accepted.
func (st *vmStack) pacedLag(ctx context.Context, res lagResult, label string, interval time.Duration,
	status func(accepted int) string, send func(ctx context.Context) (issued, error)) (lagResult, error) {
	latest, finish := st.watchCheckpoint(ctx, interval)
	defer finish()
	var (
		mu   sync.Mutex
		cmds = make([]issued, 0, int(res.TargetRate*res.Duration.Seconds())+64)
	)
	stop := startProgress(fmt.Sprintf("%s paced to %.0f/s", label, res.TargetRate), res.Duration, func() string {
		mu.Lock()
		defer mu.Unlock()
		return status(len(cmds))
	})
	elapsed, err := pace(ctx, res.TargetRate, res.Duration, func(gctx context.Context) error {
		cmd, err := send(gctx)
		if err != nil {
			return err
		}
		mu.Lock()
		cmds = append(cmds, cmd)
		mu.Unlock()
		return nil
	})
	stop()
	if err != nil {
		return res, err
	}
	res.Elapsed = elapsed
	return st.measureLag(ctx, res, cmds, latest, finish, interval)
}

// measureLag looks up each accepted command's log position and, from the
// checkpoint watcher's readings, how long after its 202 the vms read model
// had applied it.
func (st *vmStack) measureLag(ctx context.Context, res lagResult, cmds []issued,
	latest func() eventlog.Position, finish func() ([]checkpointSeen, int, error), interval time.Duration) (lagResult, error) {
	res.Commands = len(cmds)
	if len(cmds) == 0 {
		return res, errors.New("projection lag: no command accepted")
	}
	// The log orders by (transaction id, position): look up each command's
	// transaction id, which the 202 does not carry.
	globals := make([]int64, len(cmds))
	for i, cmd := range cmds {
		globals[i] = cmd.global
	}
	rows, err := st.db.admin.Query(ctx, `SELECT global_position, transaction_id::text FROM events WHERE global_position = ANY($1)`, globals)
	if err != nil {
		return res, fmt.Errorf("positions: %w", err)
	}
	txids := make(map[int64]uint64, len(cmds))
	for rows.Next() {
		var gp int64
		var txt string
		if err := rows.Scan(&gp, &txt); err != nil {
			rows.Close()
			return res, err
		}
		if txids[gp], err = strconv.ParseUint(txt, 10, 64); err != nil {
			rows.Close()
			return res, err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, err
	}
	last := eventlog.Start
	for i := range cmds {
		txid, ok := txids[cmds[i].global]
		if !ok {
			return res, fmt.Errorf("position %d of an accepted command is not in the log", cmds[i].global)
		}
		cmds[i].pos = eventlog.Position{TransactionID: txid, GlobalPosition: cmds[i].global}
		if last.Less(cmds[i].pos) {
			last = cmds[i].pos
		}
	}
	// Drain: the read model must reach the last command.
	for drainBy := time.Now().Add(drainLimit); latest().Less(last); {
		if time.Now().After(drainBy) {
			return res, fmt.Errorf("projection lag: the vms read model is not at position %d %s after the commands stopped", last.GlobalPosition, drainLimit)
		}
		if err := sleepCtx(ctx, interval); err != nil {
			return res, err
		}
	}
	seen, polls, err := finish()
	if err != nil {
		return res, fmt.Errorf("checkpoint watcher: %w", err)
	}
	res.Polls = polls
	lags, post := make([]time.Duration, len(cmds)), make([]time.Duration, len(cmds))
	for i, cmd := range cmds {
		post[i] = cmd.post
		// The first reading at or past the command's position; readings
		// only move forward.
		k, _ := slices.BinarySearchFunc(seen, cmd.pos, func(s checkpointSeen, p eventlog.Position) int {
			if s.pos.Less(p) {
				return -1
			}
			return 1
		})
		if k == len(seen) {
			return res, fmt.Errorf("projection lag: the checkpoint never reached position %d", cmd.global)
		}
		lags[i] = max(0, seen[k].at.Sub(cmd.accepted))
	}
	res.P50, res.P99, res.Max = percentiles(lags)
	_, res.PostP99, _ = percentiles(post)
	return res, nil
}

// projectionLagCreates issues VM creates at a paced rate for d, with the
// agent stopped: the bar is about the core's pipeline (append → relay →
// JetStream → projector → read model), and in production the agent runs on
// a host of its own, not on the two cores being measured. Each create is
// one command and one event.
func (st *vmStack) projectionLagCreates(ctx context.Context, c *vmClient, rateN float64, d, interval time.Duration) (lagResult, error) {
	res := lagResult{TargetRate: rateN, Duration: d, Mode: "creates, agent stopped"}
	var n atomic.Int64
	return st.pacedLag(ctx, res, "VM creates", interval, func(accepted int) string {
		return fmt.Sprintf("%d accepted", accepted)
	}, func(gctx context.Context) (issued, error) {
		var a acceptedAnswer
		t0 := time.Now()
		code, err := c.do(gctx, http.MethodPost, "/v1/vms", map[string]any{"name": fmt.Sprintf("lag-%d", n.Add(1)),
			"kind": "qemu", "cores": 1, "memory_mb": 256, "disk_gb": 5, "template": "debian-12"}, &a)
		if err != nil {
			return issued{}, err
		}
		now := time.Now()
		if code != http.StatusAccepted {
			return issued{}, fmt.Errorf("create: %d", code)
		}
		return issued{global: a.Position, accepted: now, post: now.Sub(t0)}, nil
	})
}

// pace calls send at rateN per second for d, from enough goroutines that a
// slow answer never holds the pace back, and returns how long it ran. An
// error of send ends the run, unless it is the run's own end.
func pace(ctx context.Context, rateN float64, d time.Duration, send func(ctx context.Context) error) (time.Duration, error) {
	limiter := rate.NewLimiter(rate.Limit(rateN), 1)
	senders := max(16, int(rateN/4))
	start := time.Now()
	deadline := start.Add(d)
	g, gctx := errgroup.WithContext(ctx)
	for range senders {
		g.Go(func() error {
			for time.Now().Before(deadline) {
				if err := limiter.Wait(gctx); err != nil {
					return nil
				}
				if err := send(gctx); err != nil {
					if gctx.Err() != nil {
						return nil
					}
					return err
				}
			}
			return nil
		})
	}
	err := g.Wait()
	return time.Since(start), err
}

// vmPhase is figure 5.
func (b *bench) vmPhase(ctx context.Context) (err error) {
	// The earlier phases' idle connections would count against the cluster's
	// max_connections, which the core's pool and the tests of a shared
	// machine need.
	b.db.store.Pool().Reset()
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
	res := vmResult{AgentConcurrency: b.cfg.VMAgentConcurrency}
	if res.AgentConcurrency <= 0 {
		res.AgentConcurrency = agent.DefaultConcurrency
	}
	// A tenant per level, so the sweep of running VMs lists only its own.
	seq, err := st.tenant(ctx, "bench-sequential")
	if err != nil {
		return err
	}
	// Warm up connections, caches and prepared statements: not measured.
	for i := range 3 {
		id, err := seq.createVM(ctx, fmt.Sprintf("warmup-%d", i))
		if err != nil {
			return err
		}
		if err := seq.waitRunning(ctx, id, b.cfg.VMPoll); err != nil {
			return err
		}
	}
	lv, seqIDs, err := seq.createSequential(ctx, b.cfg.VMSequential, b.cfg.VMPoll)
	if err != nil {
		return err
	}
	res.Creates = append(res.Creates, lv)

	if warm, err := b.warmUp(ctx, st, "bench-warmup", b.cfg.VMConcurrent); err != nil {
		return err
	} else if warm.Warmup {
		res.Creates = append(res.Creates, warm)
	}
	par, err := st.tenant(ctx, "bench-concurrent")
	if err != nil {
		return err
	}
	before, err := st.agentCreates()
	if err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(b.cfg.VMCPUProfile)
	if err != nil {
		return err
	}
	cpu0, pg0 := processCPU(), st.postgresCPU(ctx)
	lv, ids, err := par.createConcurrent(ctx, b.cfg.VMConcurrent, b.cfg.VMInFlight, b.cfg.VMPoll)
	stopProfile()
	if err != nil {
		return err
	}
	lv.cpuPerVM = (processCPU() - cpu0) / time.Duration(lv.VMs)
	lv.pgCPUPerVM = pg0.since(st.postgresCPU(ctx)) / time.Duration(lv.VMs)
	stages, err := st.createStages(ctx, lv, res.AgentConcurrency, before)
	if err != nil {
		return err
	}
	lv.stages = &stages
	res.Creates = append(res.Creates, lv)

	if b.cfg.VMCommandRate > 0 && b.cfg.VMCommandDuration > 0 {
		// Every running VM of both tenants takes reboots.
		var pool []pooledVM
		for _, id := range seqIDs {
			pool = append(pool, pooledVM{seq, id})
		}
		for _, id := range ids {
			pool = append(pool, pooledVM{par, id})
		}
		lag, err := st.projectionLag(ctx, pool, b.cfg.VMCommandRate, b.cfg.VMCommandDuration, 2*time.Millisecond)
		if err != nil {
			return err
		}
		res.Lags = append(res.Lags, lag)
		// The bar's own measurement: the core's pipeline alone.
		st.stopAgent()
		lag, err = st.projectionLagCreates(ctx, par, b.cfg.VMCommandRate, b.cfg.VMCommandDuration, 2*time.Millisecond)
		if err != nil {
			return err
		}
		res.Lags = append(res.Lags, lag)
	}
	b.rep.VMs = &res
	return nil
}

func (r *vmResult) print(out io.Writer) {
	fmt.Fprintf(out, "5. The whole system over HTTP: core, agent (concurrency %d, task poll 5ms) and pvesim (tasks finish at once), in-process\n", r.AgentConcurrency)
	for _, l := range r.Creates {
		run := ""
		if l.Warmup {
			run = ", first after start (warm-up)"
		}
		fmt.Fprintf(out, "   create → running, %d in flight%s: %d VMs in %s (%.1f/s); p50 %s  p99 %s  max %s; POST p50 %s  p99 %s; watched by %s\n",
			l.InFlight, run, l.VMs, l.Elapsed.Round(time.Millisecond), l.Rate(), ms(l.P50), ms(l.P99), ms(l.Max), ms(l.PostP50), ms(l.PostP99), l.Method)
		if l.cpuPerVM > 0 {
			fmt.Fprintf(out, "     CPU per VM: %s in this process (core, agent, pvesim, NATS and the client), %s in PostgreSQL's backends\n",
				ms(l.cpuPerVM), ms(l.pgCPUPerVM))
		}
		if l.stages != nil {
			l.stages.print(out, "     ")
		}
	}
	for _, l := range r.Lags {
		fmt.Fprintf(out, "   %s paced to %.0f/s for %s: %d accepted (%.0f/s), %d conflicts (reboot still pending); POST p99 %s\n",
			l.Mode, l.TargetRate, l.Duration, l.Commands, l.Rate(), l.Conflicts, ms(l.PostP99))
		fmt.Fprintf(out, "   projection lag (202 received → vms checkpoint at its position, read every 2ms): p50 %s  p99 %s  max %s  over %d commands\n",
			ms(l.P50), ms(l.P99), ms(l.Max), l.Commands)
	}
	fmt.Fprintln(out)
}

// barCreatePostP99 is issue 16's bar for the commands of one tenant: the
// creates in flight at once, all in one tenant, are answered within it.
const (
	barCreatePostP99      = 50 * time.Millisecond
	barCreatePostInFlight = 50
)

func (r *vmResult) printBars(out *os.File) {
	for _, l := range r.Creates {
		if l.InFlight >= barCreatePostInFlight && !l.Warmup {
			verdict(out, fmt.Sprintf("POST /v1/vms p99 ≤ %s, %d creates in flight in one tenant", barCreatePostP99, l.InFlight),
				l.PostP99 <= barCreatePostP99, fmt.Sprintf("p50 %s  p99 %s", ms(l.PostP50), ms(l.PostP99)))
		}
	}
	for _, l := range r.Lags {
		verdict(out, fmt.Sprintf("projection lag p99 ≤ %s at %d commands/s (%s)", barProjectionLagP99, barCommandRate, l.Mode),
			l.P99 <= barProjectionLagP99 && l.Rate() >= 0.95*barCommandRate,
			fmt.Sprintf("%s at %.0f/s", ms(l.P99), l.Rate()))
	}
}
