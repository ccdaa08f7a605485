package stacktest

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/accountdb/accountdb/vault"
	"github.com/accountdb/accountdb/webhooks"
)

// A core in a process of its own, for tests that kill it (SIGKILL: no
// deferred call, no goodbye to PostgreSQL or NATS, connections closed by
// the kernel), which an in-process Stop cannot show. The process is the
// test binary itself, started again with processEnv set; a package using
// it calls Main from its TestMain.

// processEnv carries a process's configuration (processConfig, JSON).
const processEnv = "STACKTEST_CORE_PROCESS"

// readyPrefix starts the line a process prints once it serves.
const readyPrefix = "STACKTEST_CORE_URL "

type processConfig struct {
	AppDatabaseURL  string
	NATSURL         string
	NATSCreds       []byte
	SigningKey      ed25519.PrivateKey
	DevLoopbackHTTP bool
	Webhooks        webhooks.Options
}

// Main is a test package's TestMain: in a process StartProcess started it
// runs that core until killed (or until its parent goes); otherwise it
// runs the tests.
func Main(m *testing.M) {
	if cfg := os.Getenv(processEnv); cfg != "" {
		if err := runProcess(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "stacktest process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Process is a core running in a process of its own.
type Process struct {
	URL    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartProcess starts another core over s's database and NATS server, with
// s's keys and settings, in a process of its own; it is stopped at cleanup.
func (s *Stack) StartProcess(tb testing.TB) *Process {
	tb.Helper()
	if s.NATS == nil {
		tb.Fatal("stacktest: StartProcess needs the stack's own NATS server")
	}
	creds, err := s.NATS.Keys.Creds(natsauth.Core())
	if err != nil {
		tb.Fatal(err)
	}
	o := s.cfg.Webhooks
	o.Logger = nil
	cfg, err := json.Marshal(processConfig{AppDatabaseURL: s.DB.AppURL, NATSURL: s.NATS.URL(), NATSCreds: creds,
		SigningKey: s.SigningKey, DevLoopbackHTTP: s.cfg.DevLoopbackHTTP, Webhooks: o})
	if err != nil {
		tb.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), processEnv+"="+string(cfg))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // the process ends when this closes (the test binary went)
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), readyPrefix); ok {
				urls <- u
			}
		}
		_ = cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(func() { // a graceful stop (its stdin closed), killed if it lingers
		_ = stdin.Close()
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			p.Kill(tb)
		}
	})
	select {
	case p.URL = <-urls:
	case <-p.exited:
		tb.Fatal("stacktest: the core process ended before serving")
	case <-time.After(2 * time.Minute):
		tb.Fatal("stacktest: the core process did not serve within 2 minutes")
	}
	return p
}

// Kill ends the process with SIGKILL and waits until it is gone.
func (p *Process) Kill(tb testing.TB) {
	tb.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		tb.Fatalf("stacktest: kill: %v", err)
	}
	<-p.exited
}

// runProcess is the core of a process StartProcess started.
func runProcess(raw string) error {
	var pc processConfig
	if err := json.Unmarshal([]byte(raw), &pc); err != nil {
		return err
	}
	natsOpts, err := natsauth.CredsOptions(pc.NATSCreds, natsauth.Core())
	if err != nil {
		return err
	}
	keys, err := auth.NewKeySet(pc.SigningKey)
	if err != nil {
		return err
	}
	v, err := vault.New(vaultKey)
	if err != nil {
		return err
	}
	cfg := app.Config{AppDatabaseURL: pc.AppDatabaseURL, NATSURL: pc.NATSURL, NATSOptions: natsOpts, HTTPAddr: "127.0.0.1:0",
		Limits: generousCaps(api.Limits{}), Identity: app.Identity{Keys: keys, CursorKey: cursorKey},
		PublicRate: generous, UserRate: generous, TenantRate: generous,
		Vault: v, DevLoopbackHTTP: pc.DevLoopbackHTTP, Webhooks: pc.Webhooks}
	var logTo io.Writer = io.Discard
	if os.Getenv("STACKTEST_LOG") != "" {
		logTo = os.Stderr
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the parent went: stop
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	sys, err := app.Start(ctx, cfg, slog.New(slog.NewJSONHandler(logTo, nil)))
	if err != nil {
		return err
	}
	fmt.Println(readyPrefix + sys.URL())
	return sys.Run(ctx)
}
