// Package e2e_test drives the embedded web console in headless Chromium: a
// real stack (PostgreSQL, embedded NATS, relay, projectors, the API serving
// web/static, an agent on pvesim) is booted here, and the scenarios in
// *.test.mjs run against it under Node's test runner with playwright-core.
// The Go test only builds the world and reports what the browser saw.
package e2e_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nodeTimeout bounds the whole browser run; it takes about two minutes on a
// quiet machine.
const nodeTimeout = 8 * time.Minute

func TestConsoleInChromium(t *testing.T) {
	tools := requireTools(t)
	// E2E_SPECS (a glob, e.g. assistant.test.mjs) runs some scenarios only.
	pattern := "*.test.mjs"
	if p := os.Getenv("E2E_SPECS"); p != "" {
		pattern = p
	}
	specs, err := filepath.Glob(pattern)
	if err != nil || len(specs) == 0 {
		t.Fatalf("no browser scenarios (*.test.mjs) in web/e2e: %v", err)
	}
	out := outputDir(t)
	w := startWorld(t)

	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	args := append([]string{"--test", "--test-concurrency=1", "--test-reporter=spec"}, specs...)
	cmd := exec.CommandContext(ctx, tools.node, args...)
	cmd.Env = append(os.Environ(), w.env(tools.chromium, out)...)
	cmd.WaitDelay = 10 * time.Second
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if testing.Verbose() {
		cmd.Stdout = io.MultiWriter(&output, os.Stdout)
		cmd.Stderr = cmd.Stdout
	}
	err = cmd.Run()
	if err != nil {
		t.Fatalf("browser scenarios failed (%v); screenshots of the failing pages are in %s\n%s", err, out, output.String())
	}
	t.Logf("browser scenarios passed:\n%s", tail(output.String(), 12))
}

// tools are the programs the browser run needs, found or the test fails
// with what to install: a missing tool must not pass as a skipped test.
type tools struct {
	node, chromium string
}

func requireTools(t *testing.T) tools {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node (Node.js 20 or newer) is not installed; the console's browser tests need it (`make test` and .ci/run install what is missing)")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core", "package.json")); err != nil {
		t.Fatal("playwright-core is not installed in web/e2e/node_modules: run `make e2e-deps` (npm ci in web/e2e)")
	}
	chromium := os.Getenv("E2E_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("Chromium is not at %s: install Debian's package (apt-get install chromium), or set E2E_CHROMIUM", chromium)
	}
	return tools{node: node, chromium: chromium}
}

// outputDir is where failing scenarios leave screenshots: $E2E_OUT, or
// web/e2e/out (git-ignored), emptied first so what is there is this run's.
func outputDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("E2E_OUT")
	if dir == "" {
		abs, err := filepath.Abs("out")
		if err != nil {
			t.Fatal(err)
		}
		dir = abs
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
