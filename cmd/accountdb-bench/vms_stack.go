package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/accountdb/accountdb/agent"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

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
