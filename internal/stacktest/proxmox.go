package stacktest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// Proxmox is a simulated Proxmox VE cluster registered with a stack and
// driven by a real agent, so VM requests really happen, as in `make run`.
type Proxmox struct {
	Sim       *pvesim.Server
	ClusterID uuid.UUID
}

// StartProxmox starts pvesim on a loopback port, registers it as a cluster
// and runs an agent against the stack's NATS server with fast polling. All
// of it stops at cleanup.
func (s *Stack) StartProxmox(tb testing.TB, simOpts pvesim.Options) *Proxmox {
	tb.Helper()
	p := s.RegisterProxmox(tb, simOpts)
	s.StartAgent(tb, nil)
	return p
}

// RegisterProxmox starts pvesim on a loopback port and registers it as a
// cluster, with no agent (StartAgent runs them).
func (s *Stack) RegisterProxmox(tb testing.TB, simOpts pvesim.Options) *Proxmox {
	tb.Helper()
	sim, err := pvesim.StartServer(simOpts, "127.0.0.1:0", true)
	if err != nil {
		tb.Fatalf("stacktest: pvesim: %v", err)
	}
	tb.Cleanup(func() { _ = sim.Close() })
	res, err := s.Sys.Commands.RegisterCluster(context.Background(), system(), commands.Options{},
		commands.NewCluster{Name: "sim", APIURL: sim.URL(), TokenID: pvesim.DefaultTokenID, TokenSecret: pvesim.DefaultTokenSecret,
			TLSFingerprint: domain.CertificateFingerprint(sim.Certificate())})
	if err != nil {
		tb.Fatalf("stacktest: register pvesim: %v", err)
	}
	return &Proxmox{Sim: sim, ClusterID: res.ID}
}

// Agent is an agent process of the stack.
type Agent struct {
	*agent.Agent
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// StartAgent runs an agent on a connection of its own, as the agent
// (any number may run: one leads, the others stand by), with fast polling;
// mod may change its configuration. It stops at cleanup.
func (s *Stack) StartAgent(tb testing.TB, mod func(*agent.Config)) *Agent {
	tb.Helper()
	nc, js := s.Connect(tb, natsauth.Agent())
	logs := io.Discard
	if os.Getenv("STACKTEST_LOG") != "" {
		logs = os.Stderr
	}
	cfg := agent.Config{JS: js, Vault: s.Vault, Logger: slog.New(slog.NewJSONHandler(logs, nil)).With("component", "agent"),
		Concurrency: 16, ReconcileInterval: 300 * time.Millisecond, TaskPollInterval: 20 * time.Millisecond,
		RetryBaseDelay: 20 * time.Millisecond, RetryMaxDelay: 200 * time.Millisecond, ShutdownTimeout: 2 * time.Second,
		GuestAddressPoll: 50 * time.Millisecond, GuestAddressPollMax: 500 * time.Millisecond}
	if s.Cluster != nil {
		cfg.NATSReplicas = 3
	}
	if mod != nil {
		mod(&cfg)
	}
	ag, err := agent.New(cfg)
	if err != nil {
		tb.Fatalf("stacktest: agent: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Agent{Agent: ag, nc: nc, cancel: cancel, done: make(chan error, 1)}
	go func() { a.done <- ag.Run(ctx) }()
	tb.Cleanup(a.Stop)
	return a
}

// Stop stops the agent cleanly: it finishes or abandons what it holds and
// releases its lease.
func (a *Agent) Stop() {
	a.once.Do(func() {
		a.cancel()
		<-a.done
	})
}

// Crash ends the agent as kill -9 would, seen from the rest of the
// system: its connection goes first, so it neither releases its lease nor
// acknowledges what it held; JetStream redelivers that after the ack wait.
func (a *Agent) Crash() {
	a.nc.Close()
	a.Stop()
}
