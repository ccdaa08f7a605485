package accountdb_test

// The agent runs on Proxmox hosts with bus credentials only, and every bus
// reader should build without the event store. This test keeps it so: the
// packages below, and everything they import, must never reach the PostgreSQL
// driver or the packages that wrap it.

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// busSide are the packages that must build without PostgreSQL: the agent
// binary's code and the contracts and simulator it is tested against.
var busSide = []string{"./agent/...", "./bus/...", "./eventlog/...", "./domain/...", "./pvesim/..."}

// storeSide are import path prefixes the bus side must not depend on.
var storeSide = []string{
	"github.com/jackc/pgx",
	"github.com/accountdb/accountdb/eventstore",
	"github.com/accountdb/accountdb/tenantdb",
	"github.com/accountdb/accountdb/relay",
}

func TestBusSideDoesNotDependOnTheStore(t *testing.T) {
	graph, roots := importGraph(t, busSide)
	if len(roots) < len(busSide) {
		t.Fatalf("go list matched %d packages for %d patterns: %v", len(roots), len(busSide), roots)
	}
	for _, forbidden := range storeSide {
		if chain := importChain(graph, roots, func(p string) bool { return strings.HasPrefix(p, forbidden) }); chain != nil {
			t.Errorf("%s depends on %s: %s", chain[0], forbidden, strings.Join(chain, " → "))
		}
	}
}

// importGraph runs go list -deps on patterns and returns every listed
// package's imports and the packages the patterns matched themselves.
func importGraph(t *testing.T, patterns []string) (map[string][]string, []string) {
	t.Helper()
	// go test puts the go command of the toolchain running it first on PATH.
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command on PATH: %v", err)
	}
	args := append([]string{"list", "-deps", "-f", "{{.DepOnly}} {{.ImportPath}} {{join .Imports \" \"}}"}, patterns...)
	var stderr bytes.Buffer
	cmd := exec.Command(goCmd, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	graph := map[string][]string{}
	var roots []string
	for sc := bufio.NewScanner(bytes.NewReader(out)); sc.Scan(); {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		graph[f[1]] = f[2:]
		if f[0] == "false" {
			roots = append(roots, f[1])
		}
	}
	return graph, roots
}

// importChain is the shortest import path from one of roots to a package
// matching bad, nil when there is none.
func importChain(graph map[string][]string, roots []string, bad func(string) bool) []string {
	from := map[string]string{}
	queue := append([]string(nil), roots...)
	for _, r := range roots {
		from[r] = ""
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if bad(p) {
			var chain []string
			for ; p != ""; p = from[p] {
				chain = append([]string{p}, chain...)
			}
			return chain
		}
		for _, q := range graph[p] {
			if _, seen := from[q]; !seen {
				from[q] = p
				queue = append(queue, q)
			}
		}
	}
	return nil
}
