package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"

	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/nats-io/nats.go"
)

// natsClientConfig is how `serve` and `agent` authenticate to an external
// NATS server: a credentials file issued by `accountdb nats` (the
// component's user JWT and seed) and, optionally, TLS.
type natsClientConfig struct {
	CredsFile string // ACCOUNTDB_NATS_CREDS
	CAFile    string // ACCOUNTDB_NATS_CA: verify the server with this CA instead of the system's
	CertFile  string // ACCOUNTDB_NATS_CERT and _KEY: a client certificate, if the server asks for one
	KeyFile   string
	// Replicas is ACCOUNTDB_NATS_REPLICAS: how many copies every stream and
	// key-value bucket AccountDB creates keeps on a NATS cluster (1 to 5).
	// Existing ones are moved to it at start.
	Replicas int
	envErr   error
}

// MaxNATSReplicas is JetStream's limit on a stream's copies.
const MaxNATSReplicas = 5

func bindNATSClient(fs *flag.FlagSet) *natsClientConfig {
	c := &natsClientConfig{}
	fs.StringVar(&c.CredsFile, "nats-creds", env("ACCOUNTDB_NATS_CREDS", ""), "NATS credentials file of this component, from `accountdb nats init` (env ACCOUNTDB_NATS_CREDS)")
	fs.StringVar(&c.CAFile, "nats-ca", env("ACCOUNTDB_NATS_CA", ""), "PEM CA bundle that verifies the NATS server's TLS certificate (env ACCOUNTDB_NATS_CA)")
	fs.StringVar(&c.CertFile, "nats-cert", env("ACCOUNTDB_NATS_CERT", ""), "PEM client certificate for NATS TLS (env ACCOUNTDB_NATS_CERT)")
	fs.StringVar(&c.KeyFile, "nats-key", env("ACCOUNTDB_NATS_KEY", ""), "PEM key of the client certificate (env ACCOUNTDB_NATS_KEY)")
	var errs []error
	c.Replicas = envParsed(&errs, "ACCOUNTDB_NATS_REPLICAS", 1, strconv.Atoi, "a whole number")
	c.envErr = errors.Join(errs...)
	fs.IntVar(&c.Replicas, "nats-replicas", c.Replicas, "copies of every stream and key-value bucket on a NATS cluster, 1 to 5; 3 in production (env ACCOUNTDB_NATS_REPLICAS)")
	return c
}

// validate reports a malformed or out-of-range replica count.
func (c *natsClientConfig) validate() error {
	if c == nil {
		return nil
	}
	if c.envErr != nil {
		return c.envErr
	}
	if c.Replicas < 1 || c.Replicas > MaxNATSReplicas {
		return fmt.Errorf("ACCOUNTDB_NATS_REPLICAS %d: want 1 to %d (3 on a three-node cluster)", c.Replicas, MaxNATSReplicas)
	}
	return nil
}

// options are the connect options of a client of role u. Credentials are
// required: AccountDB never uses an anonymous bus.
func (c *natsClientConfig) options(u natsauth.User) ([]nats.Option, error) {
	if c.CredsFile == "" {
		return nil, errors.New("ACCOUNTDB_NATS_CREDS is required: the " + string(u.Role) +
			"'s NATS credentials file (`accountdb nats init --dir <dir>` writes it and the server's configuration; see docs/SECURITY.md)")
	}
	creds, err := os.ReadFile(c.CredsFile)
	if err != nil {
		return nil, fmt.Errorf("ACCOUNTDB_NATS_CREDS: %w", err)
	}
	opts, err := natsauth.CredsOptions(creds, u)
	if err != nil {
		return nil, fmt.Errorf("ACCOUNTDB_NATS_CREDS %s: %w", c.CredsFile, err)
	}
	if c.CAFile != "" {
		opts = append(opts, nats.RootCAs(c.CAFile))
	}
	switch {
	case c.CertFile != "" && c.KeyFile != "":
		opts = append(opts, nats.ClientCert(c.CertFile, c.KeyFile))
	case c.CertFile != "" || c.KeyFile != "":
		return nil, errors.New("ACCOUNTDB_NATS_CERT and ACCOUNTDB_NATS_KEY go together")
	}
	return opts, nil
}
