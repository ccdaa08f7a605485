package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/vault"
	"github.com/nats-io/nats.go"
)

// loadIdentity reads the JWT signing key from ACCOUNTDB_JWT_PRIVATE_KEY (PEM)
// or, failing that, from the data directory, generating one there the first
// time. ACCOUNTDB_JWT_PREVIOUS_PUBLIC_KEYS (PEM blocks) keeps tokens signed by
// retired keys valid while they expire.
func loadIdentity(cfg *config) (app.Identity, error) {
	var (
		key ed25519.PrivateKey
		err error
	)
	if pem := os.Getenv("ACCOUNTDB_JWT_PRIVATE_KEY"); pem != "" {
		key, err = auth.ParsePrivateKeyPEM([]byte(pem))
	} else {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return app.Identity{}, fmt.Errorf("data dir: %w", err)
		}
		key, err = auth.LoadOrGenerateKey(cfg.DataDir)
	}
	if err != nil {
		return app.Identity{}, fmt.Errorf("jwt signing key: %w", err)
	}
	var previous []ed25519.PublicKey
	for _, block := range splitPEM(os.Getenv("ACCOUNTDB_JWT_PREVIOUS_PUBLIC_KEYS")) {
		pub, err := auth.ParsePublicKeyPEM([]byte(block))
		if err != nil {
			return app.Identity{}, fmt.Errorf("ACCOUNTDB_JWT_PREVIOUS_PUBLIC_KEYS: %w", err)
		}
		previous = append(previous, pub)
	}
	keys, err := auth.NewKeySet(key, previous...)
	if err != nil {
		return app.Identity{}, err
	}
	ic := app.Identity{Keys: keys}
	// List cursors are signed with a key derived from the signing key, so
	// they survive restarts and work across replicas that share it.
	sum := sha256.Sum256(append([]byte("accountdb list cursors\x00"), key.Seed()...))
	ic.CursorKey = sum[:]
	for _, o := range strings.Split(os.Getenv("ACCOUNTDB_CORS_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			ic.CORSOrigins = append(ic.CORSOrigins, o)
		}
	}
	for _, p := range strings.Split(os.Getenv("ACCOUNTDB_TRUSTED_PROXIES"), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			return app.Identity{}, fmt.Errorf("ACCOUNTDB_TRUSTED_PROXIES: %q is not a CIDR prefix", p)
		}
		ic.TrustedProxies = append(ic.TrustedProxies, prefix)
	}
	return ic, nil
}

func splitPEM(s string) []string {
	var out []string
	for _, part := range strings.SplitAfter(s, "-----END PUBLIC KEY-----") {
		if strings.TrimSpace(part) != "" {
			out = append(out, part)
		}
	}
	return out
}

// appConfig turns the process configuration into the core service's.
func appConfig(cfg *config, natsURL string, natsOpts []nats.Option) (app.Config, error) {
	appURL, err := cfg.appURL()
	if err != nil {
		return app.Config{}, err
	}
	ident, err := loadIdentity(cfg)
	if err != nil {
		return app.Config{}, err
	}
	v, err := loadVault(cfg)
	if err != nil {
		return app.Config{}, err
	}
	asst, err := cfg.assistantConfig()
	if err != nil {
		return app.Config{}, err
	}
	return app.Config{AppDatabaseURL: appURL, NATSURL: natsURL, NATSOptions: natsOpts, HTTPAddr: cfg.HTTPAddr, Identity: ident, Vault: v,
		OpsAddr: cfg.OpsAddr, Limits: cfg.Limits, PublicRate: cfg.PublicRate, UserRate: cfg.UserRate, TenantRate: cfg.TenantRate,
		Assistant: asst, AssistantLimits: cfg.AssistantLimits,
		// A server keeps its connections warm (app.DefaultPoolSize says why).
		PoolSize: int32(cfg.PoolSize), KeepPoolOpen: true}, nil
}

// loadVault reads the secrets key shared with the agent from
// ACCOUNTDB_SECRETS_KEY (base64, 32 bytes) or, in development, from the data
// directory, generating it there the first time.
func loadVault(cfg *config) (*vault.Vault, error) {
	var (
		key []byte
		err error
	)
	if k := os.Getenv("ACCOUNTDB_SECRETS_KEY"); k != "" {
		key, err = vault.ParseKey(k)
	} else {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		key, err = vault.LoadOrGenerateKey(cfg.DataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	return vault.New(key)
}
