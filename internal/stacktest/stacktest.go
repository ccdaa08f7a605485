// Package stacktest boots the real AccountDB core for acceptance tests: a
// fresh PostgreSQL database, an embedded NATS server with JetStream, and
// app.System (relay, projectors, HTTP API) on a loopback port. Tests talk to
// it over HTTP like any client. Stack.StartProxmox adds pvesim and a real
// agent, for tests whose VMs must really be provisioned.
package stacktest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/assistant"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/backupsched"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/internal/authtest"
	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/accountdb/accountdb/internal/natstest"
	"github.com/accountdb/accountdb/internal/pgtest"
	"github.com/accountdb/accountdb/vault"
	"github.com/accountdb/accountdb/webhooks"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options tunes the stack; zero values suit most tests.
type Options struct {
	// Rate limits; zero means generous limits that tests never hit.
	PublicRate, UserRate, TenantRate api.RateLimit
	CORSOrigins                      []string
	// VMDeadline fails VM actions without a result after this long.
	VMDeadline time.Duration
	// Limits: zero caps mean generous ones that tests never hit (as for
	// the rates); zero timeouts take the defaults.
	Limits api.Limits
	// OpsAddr puts the operations endpoints on a listener of their own
	// (app.Config.OpsAddr; "127.0.0.1:0" for a free port).
	OpsAddr string
	// PoolSize: the service's PostgreSQL connections (0: app.DefaultPoolSize()).
	PoolSize int32
	// LogTo, when set, receives the core's JSON logs (tests that prove
	// something never reaches a log).
	LogTo io.Writer
	// DevLoopbackHTTP accepts http:// loopback URLs for clusters and
	// identity providers, as `accountdb dev` does (in-process test servers).
	DevLoopbackHTTP bool
	// Cluster, when set, is the NATS cluster the stack uses (every node's
	// URL, 3 replicas per stream) instead of a server of its own.
	Cluster *natstest.Cluster
	// Postgres, when set, is the server the stack's database is created on
	// (a throwaway cluster the test may restart) instead of DATABASE_URL's.
	Postgres *pgtest.Server
	// Webhooks tunes webhook delivery (retry schedule, time-outs, allowed
	// addresses); zero values take the defaults.
	Webhooks webhooks.Options
	// BackupSchedules configures the core's backup scheduler (a long
	// Interval keeps it out of a test that drives its own).
	BackupSchedules backupsched.Config
	// TrustedProxies are the peers whose X-Forwarded-For the API believes
	// (a test then speaks for clients at other addresses).
	TrustedProxies []netip.Prefix
	// Assistant configures the assistant's model (an empty URL: off) and
	// AssistantLimits its rate and caps (zero: the API's defaults).
	Assistant       assistant.Config
	AssistantLimits api.AssistantLimits
}

// Stack is a running core service.
type Stack struct {
	URL  string
	DB   *pgtest.DB
	NATS *natstest.Server // nil with Options.Cluster
	// Cluster is Options.Cluster.
	Cluster *natstest.Cluster
	// Stop stops this core instance (as its process ending would); it is
	// called at cleanup too.
	Stop func()
	Sys  *app.System
	Keys *auth.KeySet
	// SigningKey is the private key behind Keys, for tests that forge
	// tokens the issuer would never sign (no exp, another audience).
	SigningKey ed25519.PrivateKey
	// Vault is the secrets key the core was given (an agent needs the same).
	Vault *vault.Vault
	Store *eventstore.Store

	cfg app.Config
	log *slog.Logger
}

var generous = api.RateLimit{N: 1_000_000, Window: time.Minute}

// The secrets key and the cursor key of every stack (and of its
// processes, process.go): test values.
var (
	vaultKey  = bytes.Repeat([]byte{9}, 32)
	cursorKey = bytes.Repeat([]byte{7}, 32)
)

// Start boots a stack and stops it at cleanup.
func Start(tb testing.TB, o Options) *Stack {
	tb.Helper()
	var db *pgtest.DB
	if o.Postgres != nil {
		db = pgtest.NewOn(tb, o.Postgres.URL())
	} else {
		db = pgtest.New(tb)
	}
	var ns *natstest.Server
	natsURL, replicas := "", 0
	var natsOpts []nats.Option
	if o.Cluster != nil {
		natsURL, natsOpts, replicas = o.Cluster.URLs(), o.Cluster.Options(tb, natsauth.Core()), 3
	} else {
		ns = natstest.Start(tb)
		natsURL, natsOpts = ns.URL(), ns.CoreOptions(tb)
	}
	key, keys := authtest.SigningKey(tb)
	v, err := vault.New(vaultKey)
	if err != nil {
		tb.Fatal(err)
	}
	or := func(l api.RateLimit) api.RateLimit {
		if l.N == 0 {
			return generous
		}
		return l
	}
	cfg := app.Config{AppDatabaseURL: db.AppURL, NATSURL: natsURL, NATSOptions: natsOpts, NATSReplicas: replicas, HTTPAddr: "127.0.0.1:0",
		OpsAddr: o.OpsAddr, PoolSize: o.PoolSize, Limits: generousCaps(o.Limits),
		Identity:   app.Identity{Keys: keys, CursorKey: cursorKey, CORSOrigins: o.CORSOrigins, TrustedProxies: o.TrustedProxies},
		PublicRate: or(o.PublicRate), UserRate: or(o.UserRate), TenantRate: or(o.TenantRate),
		Vault: v, VMDeadline: o.VMDeadline, DevLoopbackHTTP: o.DevLoopbackHTTP, Webhooks: o.Webhooks, BackupSchedules: o.BackupSchedules,
		Assistant: o.Assistant, AssistantLimits: o.AssistantLimits}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if os.Getenv("STACKTEST_LOG") != "" {
		logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if o.LogTo != nil {
		logger = slog.New(slog.NewJSONHandler(o.LogTo, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	sys, stop := startSystem(tb, cfg, logger)
	return &Stack{URL: sys.URL(), DB: db, NATS: ns, Cluster: o.Cluster, Stop: stop, Sys: sys, Keys: keys, SigningKey: key, Store: sys.Store,
		Vault: v, cfg: cfg, log: logger}
}

// generousCaps is l with its zero caps raised beyond what tests reach.
func generousCaps(l api.Limits) api.Limits {
	for _, c := range []*int{&l.ExportsPerUser, &l.ExportsPerTenant, &l.StreamsPerUser, &l.StreamsPerTenant} {
		if *c == 0 {
			*c = 10_000
		}
	}
	return l
}

// Replica starts another core service over the same database and NATS
// server, with the same keys and settings, as a second `accountdb serve`
// would be: it shares nothing in memory with s. Stopped at cleanup.
func (s *Stack) Replica(tb testing.TB) *Stack {
	tb.Helper()
	r := *s
	r.Sys, r.Stop = startSystem(tb, s.cfg, s.log)
	r.URL, r.Store = r.Sys.URL(), r.Sys.Store
	return &r
}

// startSystem starts app.System with cfg; stop (also run at cleanup) ends
// it gracefully.
func startSystem(tb testing.TB, cfg app.Config, logger *slog.Logger) (*app.System, func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sys, err := app.Start(ctx, cfg, logger)
	if err != nil {
		cancel()
		tb.Fatalf("stacktest: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- sys.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("stacktest: shutdown: %v", err)
				}
			case <-time.After(20 * time.Second):
				tb.Errorf("stacktest: shutdown did not finish")
			}
		})
	}
	tb.Cleanup(stop)
	return sys, stop
}

// Account is a user created for a test, with its password.
type Account struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	Email    string
	Password string
	Roles    []string
}

// system is the operator at the host, as `accountdb admin` runs.
func system() commands.Actor {
	return commands.Actor{TenantID: domain.PlatformTenant, Roles: []string{auth.RolePlatformAdmin}}
}

// Tenant creates a tenant directly through the command layer.
func (s *Stack) Tenant(tb testing.TB, name string) uuid.UUID {
	tb.Helper()
	res, err := s.Sys.Commands.CreateTenant(context.Background(), system(), commands.Options{}, name,
		domain.Quota{MaxVMs: 10, MaxCores: 32, MaxMemoryMB: 65536, MaxDiskGB: 1000})
	if err != nil {
		tb.Fatalf("stacktest: tenant: %v", err)
	}
	return res.ID
}

// User creates a user in tenant with roles (domain.PlatformTenant for a
// platform administrator).
func (s *Stack) User(tb testing.TB, tenant uuid.UUID, roles ...string) Account {
	tb.Helper()
	a := Account{TenantID: tenant, Email: "u" + uuid.NewString()[:12] + "@example.com", Password: "pw-" + uuid.NewString(), Roles: roles}
	res, err := s.Sys.Commands.CreateUser(context.Background(), system(), commands.Options{}, commands.NewUser{
		TenantID: tenant, Email: a.Email, DisplayName: "Test User", Password: a.Password, Roles: roles})
	if err != nil {
		tb.Fatalf("stacktest: user: %v", err)
	}
	a.ID = res.ID
	return a
}

// Tokens is a login answer.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
}

// Login signs a in over HTTP.
func (s *Stack) Login(tb testing.TB, a Account) Tokens {
	tb.Helper()
	var t Tokens
	resp := s.Do(tb, "", http.MethodPost, "/v1/auth/login", map[string]string{"email": a.Email, "password": a.Password}, &t)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("stacktest: login %s: %d", a.Email, resp.StatusCode)
	}
	return t
}

// Response is an HTTP answer with its body read.
type Response struct {
	*http.Response
	Body []byte
}

// Do sends a JSON request (body nil: none) with an optional bearer token and
// decodes a JSON answer into out when out is non-nil and the status is 2xx.
func (s *Stack) Do(tb testing.TB, token, method, path string, body, out any, headers ...string) Response {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case []byte:
			rd = bytes.NewReader(b)
		case string:
			rd = bytes.NewReader([]byte(b))
		default:
			data, err := json.Marshal(body)
			if err != nil {
				tb.Fatal(err)
			}
			rd = bytes.NewReader(data)
		}
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, data := s.send(tb, req)
	// A read with X-Consistency-Token that the read model did not reach
	// within the server's wait is answered stale; a client that needs its
	// own write asks again, as these tests do (on a loaded machine one wait
	// is not always enough). Reads only: they carry no body to resend.
	for try := 0; try < staleRetries && method == http.MethodGet && req.Header.Get("X-Consistency-Token") != "" &&
		resp.Header.Get("X-Consistency") == "stale"; try++ {
		tb.Logf("stacktest: %s %s answered stale; asking again", method, path)
		resp, data = s.send(tb, req)
	}
	if out != nil && resp.StatusCode/100 == 2 && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			tb.Fatalf("stacktest: %s %s: decode %s: %v", method, path, data, err)
		}
	}
	return Response{Response: resp, Body: data}
}

// staleRetries is how many more times a stale consistent read is asked
// (each waits up to the server's ConsistencyWait).
const staleRetries = 5

func (s *Stack) send(tb testing.TB, req *http.Request) (*http.Response, []byte) {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("stacktest: %s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, data
}

// Problem decodes a problem answer.
func (r Response) Problem(tb testing.TB) map[string]any {
	tb.Helper()
	var p map[string]any
	if err := json.Unmarshal(r.Body, &p); err != nil {
		tb.Fatalf("not a problem document (%d): %s", r.StatusCode, r.Body)
	}
	return p
}

// Eventually polls cond until it holds or timeout passes.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// JetStream connects a client to the stack's NATS server as the core,
// closed at cleanup.
func (s *Stack) JetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	_, js := s.Connect(tb, natsauth.Core())
	return js
}

// Connect opens a connection as u to the stack's NATS server or cluster
// (every node), reconnecting for ever, closed at cleanup.
func (s *Stack) Connect(tb testing.TB, u natsauth.User) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	if s.Cluster == nil {
		return s.NATS.JetStream(tb, u, nats.MaxReconnects(-1))
	}
	nc, err := nats.Connect(s.Cluster.URLs(), append(s.Cluster.Options(tb, u), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))...)
	if err != nil {
		tb.Fatalf("stacktest: connect to the cluster as %s: %v", u.Name(), err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return nc, js
}

// AgentJetStream connects a client as the Proxmox agent, with the agent's
// permissions (results on ACCOUNTDB_AGENT, no events), closed at cleanup.
func (s *Stack) AgentJetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	_, js := s.Connect(tb, natsauth.Agent())
	return js
}

// TenantWithQuota creates a tenant with the given quota.
func (s *Stack) TenantWithQuota(tb testing.TB, name string, q domain.Quota) uuid.UUID {
	tb.Helper()
	res, err := s.Sys.Commands.CreateTenant(context.Background(), system(), commands.Options{}, name, q)
	if err != nil {
		tb.Fatalf("stacktest: tenant: %v", err)
	}
	return res.ID
}
