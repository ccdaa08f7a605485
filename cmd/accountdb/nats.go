package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/google/uuid"
)

// Files `accountdb nats init` (and `dev`, in its data directory) writes
// beside the key seeds.
const (
	natsServerConfigFile = "nats-server.conf"
	coreCredsFile        = "core.creds"
	agentCredsFile       = "agent.creds"
	// DefaultSubscriberTTL is how long a subscriber's credentials are valid
	// unless --expires says otherwise.
	defaultSubscriberTTL = 90 * 24 * time.Hour
)

// runNATS is `accountdb nats`: the bus's keys, the server configuration
// that trusts them, and credentials for the components and for external
// subscribers. Whoever runs it holds the account key: a platform operator.
func runNATS(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("nats: want `init`, `server-config` or `creds` (see docs/SECURITY.md)")
	}
	fs := flag.NewFlagSet("nats "+args[0], flag.ContinueOnError)
	dir := fs.String("dir", env("ACCOUNTDB_NATS_AUTH_DIR", ""), "directory of the NATS keys (env ACCOUNTDB_NATS_AUTH_DIR)")
	role := fs.String("role", "subscriber", "creds: core, agent or subscriber")
	tenant := fs.String("tenant", "", "creds: the subscriber's tenant id")
	consumer := fs.String("consumer", "", "creds: the subscriber's consumer label, [a-z0-9_-]{1,32}")
	expires := fs.Duration("expires", defaultSubscriberTTL, "creds: how long a subscriber's credentials are valid")
	var out natsFiles
	fs.StringVar(&out.serverConfig, "server-config", "", "init: where to write the server's configuration (default <dir>/"+natsServerConfigFile+")")
	fs.StringVar(&out.coreCreds, "core-creds", "", "init: where to write the core's credentials (default <dir>/"+coreCredsFile+")")
	fs.StringVar(&out.agentCreds, "agent-creds", "", "init: where to write the agent's credentials (default <dir>/"+agentCredsFile+")")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("nats: --dir is required")
	}
	switch args[0] {
	case "init":
		keys, created, err := natsauth.LoadOrCreate(*dir)
		if err != nil {
			return err
		}
		out = out.orIn(*dir)
		if err := out.write(keys); err != nil {
			return err
		}
		verb := "kept the existing"
		if created {
			verb = "generated new"
		}
		fmt.Fprintf(stdout, "%s NATS keys in %s\n  server: include %s in nats-server's configuration\n  core:   ACCOUNTDB_NATS_CREDS=%s\n  agent:  ACCOUNTDB_NATS_CREDS=%s\n",
			verb, *dir, out.serverConfig, out.coreCreds, out.agentCreds)
		return nil
	case "server-config":
		keys, err := natsauth.Load(*dir)
		if err != nil {
			return err
		}
		conf, err := keys.ServerConfig()
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, conf)
		return err
	case "creds":
		keys, err := natsauth.Load(*dir)
		if err != nil {
			return err
		}
		u, err := credsUser(*role, *tenant, *consumer, *expires)
		if err != nil {
			return err
		}
		creds, err := keys.Creds(u)
		if err != nil {
			return err
		}
		if u.Role == natsauth.RoleSubscriber {
			fmt.Fprintf(stderr, "read-only credentials for tenant %s, consumer %s (filter %s), inbox prefix %s, valid until %s\n",
				u.Tenant, u.ConsumerName(), u.FilterSubject(), u.InboxPrefix(), u.Expires.Format(time.RFC3339))
		}
		_, err = stdout.Write(creds)
		return err
	}
	return fmt.Errorf("nats: unknown command %q: want init, server-config or creds", args[0])
}

func credsUser(role, tenant, consumer string, ttl time.Duration) (natsauth.User, error) {
	switch natsauth.Role(role) {
	case natsauth.RoleCore:
		return natsauth.Core(), nil
	case natsauth.RoleAgent:
		return natsauth.Agent(), nil
	case natsauth.RoleSubscriber:
		id, err := uuid.Parse(tenant)
		if err != nil {
			return natsauth.User{}, fmt.Errorf("nats creds: --tenant %q: not a tenant id", tenant)
		}
		if ttl <= 0 {
			return natsauth.User{}, errors.New("nats creds: --expires must be positive")
		}
		return natsauth.Subscriber(id, consumer, time.Now().Add(ttl)), nil
	}
	return natsauth.User{}, fmt.Errorf("nats creds: --role %q: want core, agent or subscriber", role)
}

// natsFiles are where `nats init` writes the server's configuration and the
// components' credentials: apart, so that each container mounts only its own.
type natsFiles struct{ serverConfig, coreCreds, agentCreds string }

// orIn fills the paths not given with the default files in dir.
func (f natsFiles) orIn(dir string) natsFiles {
	or := func(p, name string) string {
		if p != "" {
			return p
		}
		return filepath.Join(dir, name)
	}
	return natsFiles{or(f.serverConfig, natsServerConfigFile), or(f.coreCreds, coreCredsFile), or(f.agentCreds, agentCredsFile)}
}

// writeNATSFiles writes the server's configuration and the components'
// credentials next to the keys.
func writeNATSFiles(dir string, keys *natsauth.Keys) error { return natsFiles{}.orIn(dir).write(keys) }

// write writes the files; existing credentials are kept.
func (f natsFiles) write(keys *natsauth.Keys) error {
	conf, err := keys.ServerConfig()
	if err != nil {
		return err
	}
	// The configuration holds no secret, but nats-server may run as another
	// user: readable by all.
	if err := os.MkdirAll(filepath.Dir(f.serverConfig), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(f.serverConfig, []byte(conf), 0o644); err != nil {
		return err
	}
	for path, u := range map[string]natsauth.User{f.coreCreds: natsauth.Core(), f.agentCreds: natsauth.Agent()} {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		if _, err := os.Stat(path); err == nil {
			continue
		}
		creds, err := keys.Creds(u)
		if err != nil {
			return err
		}
		if err := natsauth.WriteSecret(path, creds); err != nil {
			return err
		}
	}
	return nil
}
