// Package composetest loads a Compose file the way `docker compose` does
// (compose-spec's own loader), for the tests that check the repository's
// compose files without a Docker engine (compose_test.go, deploy/).
package composetest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// Load writes text as name in a fresh directory and loads it with exactly
// env as its environment: no WithOsEnv and no .env file, so the result does
// not depend on the shell the test runs in.
func Load(tb testing.TB, name, text string, env []string) (*types.Project, error) {
	tb.Helper()
	dir := tb.TempDir()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		tb.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{path}, cli.WithWorkingDirectory(dir), cli.WithEnv(env))
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}
