package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// `accountdb nats init` writes what an external nats-server and the
// components need: a nats-server configuration with that server accepts the
// core's and a subscriber's credentials, and nothing anonymous.
func TestNATSInitConfiguresAnExternalServer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats-auth")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"nats", "init", "--dir", dir}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{natsauth.OperatorSeedFile, natsauth.AccountSeedFile, natsauth.SystemSeedFile, coreCredsFile, agentCredsFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	if !strings.Contains(out.String(), filepath.Join(dir, coreCredsFile)) {
		t.Errorf("init does not say where the core's credentials are:\n%s", out.String())
	}

	// The server as an operator runs it: its configuration file, JetStream on.
	// (include paths are relative to the including file)
	confPath := filepath.Join(dir, "server.conf")
	conf := "listen: 127.0.0.1:-1\njetstream: {store_dir: \"" + t.TempDir() + "\"}\ninclude " + natsServerConfigFile + "\n"
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(confPath)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}

	if nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("the configured server accepted an anonymous client")
	}
	core := (&natsClientConfig{CredsFile: filepath.Join(dir, coreCredsFile)})
	coreOpts, err := core.options(natsauth.Core())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL(), coreOpts...)
	if err != nil {
		t.Fatalf("core credentials: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := bus.EnsureStream(ctx, js); err != nil {
		t.Fatalf("the core creates its stream: %v", err)
	}

	// A subscriber's credentials, issued by the CLI, connect.
	tenant := uuid.New()
	var creds bytes.Buffer
	if err := run(ctx, []string{"nats", "creds", "--dir", dir, "--tenant", tenant.String(), "--consumer", "billing", "--expires", "1h"}, &creds, io.Discard); err != nil {
		t.Fatal(err)
	}
	subOpts, err := natsauth.CredsOptions(creds.Bytes(), natsauth.Subscriber(tenant, "billing", time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := nats.Connect(srv.ClientURL(), subOpts...)
	if err != nil {
		t.Fatalf("subscriber credentials: %v", err)
	}
	sc.Close()
}

// serve and agent never connect to NATS without credentials.
func TestServeAndAgentNeedNATSCredentials(t *testing.T) {
	t.Setenv("NATS_URL", "nats://127.0.0.1:1")
	t.Setenv("ACCOUNTDB_NATS_CREDS", "")
	t.Setenv("ACCOUNTDB_SECRETS_KEY", "Zm9yLWEtdGVzdC1vbmx5LW5vdC1hLXJlYWwta2V5MDA=")
	for _, cmd := range []string{"serve", "agent"} {
		err := run(context.Background(), []string{cmd, "--data-dir", t.TempDir()}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "ACCOUNTDB_NATS_CREDS is required") {
			t.Errorf("%s without NATS credentials: %v", cmd, err)
		}
	}
}

// serve and agent refuse the secrets the repository publishes (the compose
// file's former defaults), whatever else is configured.
func TestServeAndAgentRefusePublishedSecrets(t *testing.T) {
	t.Setenv("NATS_URL", "nats://127.0.0.1:1")
	t.Setenv("ACCOUNTDB_NATS_CREDS", "")
	cases := []struct {
		name     string
		env      map[string]string
		commands []string
	}{
		{"the compose file's old secrets key", map[string]string{"ACCOUNTDB_SECRETS_KEY": "ZGV2LWluc2VjdXJlLXNlY3JldHMta2V5LTMyYnl0ZXM="}, []string{"serve", "agent"}},
		{"the test suites' key", map[string]string{"ACCOUNTDB_SECRETS_KEY": "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk="}, []string{"serve", "agent"}},
		{"the compose file's old app password", map[string]string{"ACCOUNTDB_APP_DB_PASSWORD": "dev-insecure-app-password"}, []string{"serve"}},
		{"a published password in the app URL", map[string]string{"ACCOUNTDB_APP_DATABASE_URL": "postgres://accountdb_app:dev-insecure-app-password@db/accountdb"}, []string{"serve"}},
		{"a published password in the admin URL", map[string]string{"DATABASE_URL": "postgres://postgres:dev-insecure-postgres-password@db/accountdb"}, []string{"serve"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			for _, cmd := range c.commands {
				err := run(context.Background(), []string{cmd, "--data-dir", t.TempDir()}, io.Discard, io.Discard)
				if err == nil || !strings.Contains(err.Error(), "published in AccountDB's repository") {
					t.Errorf("%s: want a refusal of the published secret, got %v", cmd, err)
				}
			}
		})
	}
}
