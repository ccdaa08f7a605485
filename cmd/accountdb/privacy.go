package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/vault"
)

// openPrivacy connects the key store for a one-shot subcommand, with the
// secrets key serve uses: ACCOUNTDB_SECRETS_KEY, else the dev key already in
// the data directory. Without either it answers nil (personal values then
// stay sealed for a reader and are recorded as they are by a writer) and
// says so on warn, never generating a key a running service does not have.
func openPrivacy(ctx context.Context, cfg *config, warn io.Writer) (*app.Privacy, error) {
	v, err := existingVault(cfg)
	if err != nil {
		return nil, err
	}
	if v == nil {
		fmt.Fprintln(warn, "warning: no secrets key (ACCOUNTDB_SECRETS_KEY, or the data directory's): personal data stays sealed")
		return nil, nil
	}
	appURL, err := cfg.appURL()
	if err != nil {
		return nil, err
	}
	return app.OpenPrivacy(ctx, appURL, v)
}

func existingVault(cfg *config) (*vault.Vault, error) {
	if os.Getenv("ACCOUNTDB_SECRETS_KEY") != "" {
		return loadVault(cfg)
	}
	data, err := os.ReadFile(filepath.Join(cfg.DataDir, vault.KeyFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	key, err := vault.ParseKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	return vault.New(key)
}
