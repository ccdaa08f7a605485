// Package natsauth is AccountDB's NATS security: one operator and one
// account (ACCOUNTDB, holding every stream) in NATS's decentralized JWT
// model, and user credentials per component (core, agent) and per external
// subscriber (read-only, one tenant, one named consumer), each with
// publish and subscribe permissions signed into its JWT. A nats-server that
// trusts the operator accepts only such users: no anonymous connection, no
// user the account key did not sign. See docs/SECURITY.md.
package natsauth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// AccountName is the NATS account every AccountDB stream lives in.
const AccountName = "ACCOUNTDB"

// Keys is the trust root: the operator signs the accounts, the account key
// signs users. Whoever holds the account seed can issue credentials.
type Keys struct {
	Operator nkeys.KeyPair
	Account  nkeys.KeyPair
	System   nkeys.KeyPair // the server's system account, required in operator mode
}

// Generate makes fresh keys.
func Generate() (*Keys, error) {
	op, err := nkeys.CreateOperator()
	if err != nil {
		return nil, err
	}
	acc, err := nkeys.CreateAccount()
	if err != nil {
		return nil, err
	}
	sys, err := nkeys.CreateAccount()
	if err != nil {
		return nil, err
	}
	return &Keys{Operator: op, Account: acc, System: sys}, nil
}

// Seed files of LoadOrCreate, in its directory, each mode 0600.
const (
	OperatorSeedFile = "operator.nk"
	AccountSeedFile  = "account.nk"
	SystemSeedFile   = "system.nk"
)

// LoadOrCreate reads the keys from dir, generating and writing them (0600,
// dir 0700) the first time; created tells which.
func LoadOrCreate(dir string) (k *Keys, created bool, err error) {
	if k, err := Load(dir); err == nil {
		return k, false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	if k, err = Generate(); err != nil {
		return nil, false, err
	}
	for name, kp := range map[string]nkeys.KeyPair{OperatorSeedFile: k.Operator, AccountSeedFile: k.Account, SystemSeedFile: k.System} {
		seed, err := kp.Seed()
		if err != nil {
			return nil, false, err
		}
		if err := WriteSecret(filepath.Join(dir, name), seed); err != nil {
			return nil, false, err
		}
	}
	return k, true, nil
}

// Load reads the keys LoadOrCreate wrote.
func Load(dir string) (*Keys, error) {
	read := func(name string) (nkeys.KeyPair, error) {
		seed, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
		if err != nil {
			return nil, fmt.Errorf("natsauth: %s: %w", filepath.Join(dir, name), err)
		}
		return kp, nil
	}
	var k Keys
	var err error
	if k.Operator, err = read(OperatorSeedFile); err != nil {
		return nil, err
	}
	if k.Account, err = read(AccountSeedFile); err != nil {
		return nil, err
	}
	if k.System, err = read(SystemSeedFile); err != nil {
		return nil, err
	}
	return &k, nil
}

// WriteSecret writes data to path readable only by its owner, replacing
// what was there.
func WriteSecret(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // WriteFile keeps an existing file's mode
		return err
	}
	return os.Rename(tmp, path)
}

type signedAccounts struct {
	operator    *jwt.OperatorClaims
	operatorJWT string
	accountPub  string
	accountJWT  string
	systemPub   string
	systemJWT   string
}

func (k *Keys) sign() (*signedAccounts, error) {
	opPub, err := k.Operator.PublicKey()
	if err != nil {
		return nil, err
	}
	s := &signedAccounts{}
	if s.accountPub, err = k.Account.PublicKey(); err != nil {
		return nil, err
	}
	if s.systemPub, err = k.System.PublicKey(); err != nil {
		return nil, err
	}
	s.operator = jwt.NewOperatorClaims(opPub)
	s.operator.Name = "AccountDB"
	s.operator.SystemAccount = s.systemPub
	if s.operatorJWT, err = s.operator.Encode(k.Operator); err != nil {
		return nil, err
	}
	acc := jwt.NewAccountClaims(s.accountPub)
	acc.Name = AccountName
	// JetStream on, unlimited: the operator sizes the server, not the account.
	acc.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	if s.accountJWT, err = acc.Encode(k.Operator); err != nil {
		return nil, err
	}
	sys := jwt.NewAccountClaims(s.systemPub)
	sys.Name = "SYS"
	if s.systemJWT, err = sys.Encode(k.Operator); err != nil {
		return nil, err
	}
	return s, nil
}

// ConfigureServer puts an embedded server in operator mode with these keys:
// only users the account key signed may connect.
func (k *Keys) ConfigureServer(o *server.Options) error {
	s, err := k.sign()
	if err != nil {
		return err
	}
	res := &server.MemAccResolver{}
	if err := res.Store(s.accountPub, s.accountJWT); err != nil {
		return err
	}
	if err := res.Store(s.systemPub, s.systemJWT); err != nil {
		return err
	}
	o.TrustedOperators = []*jwt.OperatorClaims{s.operator}
	o.AccountResolver = res
	o.SystemAccount = s.systemPub
	return nil
}

// ServerConfig is the nats-server configuration that trusts these keys, to
// include in an external server's configuration file. It holds only public
// keys and signed JWTs: no secret.
func (k *Keys) ServerConfig() (string, error) {
	s, err := k.sign()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`# AccountDB: operator mode; only users signed by the %s account key connect.
# Generated by accountdb nats; public keys and signed JWTs only, no secret.
operator: %s
system_account: %s
resolver: MEMORY
resolver_preload: {
  %s: %s
  %s: %s
}
`, AccountName, s.operatorJWT, s.systemPub, s.accountPub, s.accountJWT, s.systemPub, s.systemJWT), nil
}
