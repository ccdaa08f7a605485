package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/accountdb/accountdb/agent"
	"github.com/accountdb/accountdb/internal/jetstreams"
	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/accountdb/accountdb/vault"
)

// agentConfig is `accountdb agent`'s configuration. It has no database
// setting on purpose: the agent talks to NATS and Proxmox only.
type agentConfig struct {
	NATSURL           string
	DataDir           string
	HTTPAddr          string
	LogLevel          string
	Concurrency       int
	VMIDMin, VMIDMax  int
	ReconcileInterval time.Duration
	LeaseTTL          time.Duration
	AckWait           time.Duration
	SecretsKey        string // environment only, never a flag
	NATS              *natsClientConfig
}

func bindAgentConfig(fs *flag.FlagSet) (*agentConfig, error) {
	c := &agentConfig{SecretsKey: os.Getenv("ACCOUNTDB_SECRETS_KEY")}
	var errs []error
	envInt := func(name string, def int) int {
		return envParsed(&errs, name, def, strconv.Atoi, "an integer")
	}
	envDuration := func(name string, def time.Duration) time.Duration {
		return envParsed(&errs, name, def, time.ParseDuration, "a duration (e.g. 30s)")
	}
	fs.StringVar(&c.NATSURL, "nats-url", env("NATS_URL", ""), "NATS server URL, required (env NATS_URL)")
	fs.StringVar(&c.DataDir, "data-dir", env("ACCOUNTDB_DATA_DIR", "./.data"), "directory of the dev secrets key, used when ACCOUNTDB_SECRETS_KEY is unset (env ACCOUNTDB_DATA_DIR)")
	fs.StringVar(&c.HTTPAddr, "http-addr", env("ACCOUNTDB_HTTP_ADDR", "127.0.0.1:8081"), "listen address of /healthz and /metrics (env ACCOUNTDB_HTTP_ADDR)")
	fs.StringVar(&c.LogLevel, "log-level", env("ACCOUNTDB_LOG_LEVEL", "info"), "debug, info, warn or error (env ACCOUNTDB_LOG_LEVEL)")
	fs.IntVar(&c.Concurrency, "concurrency", envInt("ACCOUNTDB_AGENT_CONCURRENCY", agent.DefaultConcurrency), "Proxmox operations run at once (env ACCOUNTDB_AGENT_CONCURRENCY)")
	fs.IntVar(&c.VMIDMin, "vmid-min", envInt("ACCOUNTDB_AGENT_VMID_MIN", agent.DefaultVMIDMin), "lowest PVE vmid given to a created guest (env ACCOUNTDB_AGENT_VMID_MIN)")
	fs.IntVar(&c.VMIDMax, "vmid-max", envInt("ACCOUNTDB_AGENT_VMID_MAX", agent.DefaultVMIDMax), "highest PVE vmid given to a created guest (env ACCOUNTDB_AGENT_VMID_MAX)")
	fs.DurationVar(&c.ReconcileInterval, "reconcile-interval", envDuration("ACCOUNTDB_AGENT_RECONCILE_INTERVAL", agent.DefaultReconcileInterval), "how often each cluster's guests and inventory are published (env ACCOUNTDB_AGENT_RECONCILE_INTERVAL)")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", envDuration("ACCOUNTDB_AGENT_LEASE_TTL", agent.DefaultLeaseTTL), "leader lease TTL when this agent creates the lease bucket; a standby takes over about this long after a leader dies (env ACCOUNTDB_AGENT_LEASE_TTL)")
	fs.DurationVar(&c.AckWait, "ack-wait", envDuration("ACCOUNTDB_AGENT_ACK_WAIT", agent.DefaultAckWait), "how long a VM request held by an agent that died waits before JetStream hands it to the next leader (env ACCOUNTDB_AGENT_ACK_WAIT)")
	c.NATS = bindNATSClient(fs)
	return c, errors.Join(errs...)
}

// envParsed is the environment variable name read with parse, or def when
// it is unset; a value parse rejects is added to errs as not being what.
func envParsed[T any](errs *[]error, name string, def T, parse func(string) (T, error), what string) T {
	v := env(name, "")
	if v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s %q: not %s", name, v, what))
	}
	return x
}

func (c *agentConfig) validate() error {
	var errs []error
	if c.NATSURL == "" {
		errs = append(errs, errors.New("NATS_URL is required"))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("ACCOUNTDB_HTTP_ADDR %q: %v", c.HTTPAddr, err))
	}
	if c.Concurrency < 1 {
		errs = append(errs, errors.New("ACCOUNTDB_AGENT_CONCURRENCY must be at least 1"))
	}
	if c.VMIDMin < 100 || c.VMIDMax > 999999999 || c.VMIDMin > c.VMIDMax {
		errs = append(errs, fmt.Errorf("ACCOUNTDB_AGENT_VMID_MIN/MAX %d-%d must be a range within 100-999999999", c.VMIDMin, c.VMIDMax))
	}
	if c.ReconcileInterval < time.Second {
		errs = append(errs, errors.New("ACCOUNTDB_AGENT_RECONCILE_INTERVAL must be at least 1s"))
	}
	if c.LeaseTTL < time.Second {
		errs = append(errs, errors.New("ACCOUNTDB_AGENT_LEASE_TTL must be at least 1s"))
	}
	if c.AckWait < time.Second {
		errs = append(errs, errors.New("ACCOUNTDB_AGENT_ACK_WAIT must be at least 1s"))
	}
	if c.SecretsKey == "" && c.DataDir == "" {
		errs = append(errs, errors.New("ACCOUNTDB_SECRETS_KEY or ACCOUNTDB_DATA_DIR is required"))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if err := c.NATS.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// secretsVault opens the vault with ACCOUNTDB_SECRETS_KEY, or with the dev
// key in the data directory (the one `accountdb dev` shares with the core).
func (c *agentConfig) secretsVault(log *slog.Logger) (*vault.Vault, error) {
	if c.SecretsKey != "" {
		key, err := vault.ParseKey(c.SecretsKey)
		if err != nil {
			return nil, fmt.Errorf("ACCOUNTDB_SECRETS_KEY: %w", err)
		}
		return vault.New(key)
	}
	key, err := vault.LoadOrGenerateKey(c.DataDir)
	if err != nil {
		return nil, err
	}
	log.Warn("ACCOUNTDB_SECRETS_KEY is not set: using the dev key in the data directory", "data_dir", c.DataDir)
	return vault.New(key)
}

// runAgent is the Proxmox agent: NATS in, Proxmox and NATS out.
func runAgent(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	cfg, envErr := bindAgentConfig(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := errors.Join(envErr, cfg.validate(), checkSecretsKey(cfg.SecretsKey)); err != nil {
		return err
	}
	level, _ := parseLevel(cfg.LogLevel)
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	v, err := cfg.secretsVault(log)
	if err != nil {
		return err
	}

	natsOpts, err := cfg.NATS.options(natsauth.Agent())
	if err != nil {
		return err
	}
	nc, err := nats.Connect(cfg.NATSURL, append([]nats.Option{
		nats.Name("accountdb-agent"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("nats reconnected") }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Error("nats", "err", err) }),
	}, natsOpts...)...)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	vctx, vcancel := context.WithTimeout(ctx, 30*time.Second)
	err = jetstreams.RequireServerVersion(vctx, nc)
	vcancel()
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a, err := agent.New(agent.Config{
		JS: js, Vault: v, Logger: log, Registerer: reg,
		Concurrency: cfg.Concurrency, VMIDMin: cfg.VMIDMin, VMIDMax: cfg.VMIDMax,
		ReconcileInterval: cfg.ReconcileInterval, LeaseTTL: cfg.LeaseTTL, AckWait: cfg.AckWait, NATSReplicas: cfg.NATS.Replicas,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !nc.IsConnected() || !a.Healthy() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		// A standby is healthy: it is ready to take over.
		role := "standby"
		if a.Leader() {
			role = "leader"
		}
		w.Header().Set("Accountdb-Agent-Role", role)
		_, _ = io.WriteString(w, "ok "+role+"\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http", "err", err)
		}
	}()
	log.Info("agent starting", "http", "http://"+ln.Addr().String(), "instance", a.Instance(), "concurrency", cfg.Concurrency, "vmid_range", fmt.Sprintf("%d-%d", cfg.VMIDMin, cfg.VMIDMax), "lease_ttl", cfg.LeaseTTL)

	runErr := a.Run(ctx)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	if runErr != nil {
		return runErr
	}
	log.Info("agent stopped")
	return nil
}
