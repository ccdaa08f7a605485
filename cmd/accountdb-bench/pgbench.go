package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/accountdb/accountdb/eventstore"
	"github.com/google/uuid"
)

// pgbenchResult is one pgbench run of the append script.
type pgbenchResult struct {
	Clients, Threads int
	Transactions     int
	Failed           int
	TPS              float64
	LatencyAvg       time.Duration
	runs             int
}

// merge adds another run at the same level: rates and latencies weighted by
// transactions (each run lasts as long as the others).
func (r *pgbenchResult) merge(o pgbenchResult) {
	n := r.Transactions + o.Transactions
	if n == 0 {
		return
	}
	r.LatencyAvg = time.Duration((float64(r.LatencyAvg)*float64(r.Transactions) + float64(o.LatencyAvg)*float64(o.Transactions)) / float64(n))
	r.TPS = (r.TPS*float64(r.runs) + o.TPS) / float64(r.runs+1)
	r.Transactions = n
	r.Failed += o.Failed
	r.runs++
}

func checkPgbench(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	return fmt.Errorf(`pgbench not found at %s. It ships with the PostgreSQL client tools:
    sudo apt-get install postgresql-client     # Debian/Ubuntu: /usr/bin/pgbench (postgresql-contrib pulls it in too)
then run again, or pass -pgbench /path/to/pgbench, or -skip-pgbench to leave the comparison out`, path)
}

// pgbenchScript is one append exactly as Store.Append sends it: the scope
// statement and the append statement in one pipeline ended by one Sync, which
// PostgreSQL runs as one implicit transaction, like pgx's batch. The SQL is
// the store's own (AppendScopeSQL and AppendSQL(Any())); only the $n
// parameters are replaced by the values Append would bind, with the types
// PostgreSQL infers for them. Each client appends to its own stream, named
// after :client_id.
func pgbenchScript(tenant, actor uuid.UUID) string {
	stream := `('bench-00000000-0000-4000-8000-' || lpad((:client_id)::text, 12, '0'))`
	scope := bindLiterals(eventstore.AppendScopeSQL, map[int]string{
		1: quoteLiteral(tenant.String()) + "::text",
		2: stream,
	})
	appendSQL := bindLiterals(eventstore.AppendSQL(eventstore.Any()), map[int]string{
		1:  stream,                                        // stream_id
		2:  quoteLiteral(benchStreamType) + "::text",      // stream_type
		3:  quoteLiteral(tenant.String()) + "::uuid",      // tenant_id
		4:  "1::bigint",                                   // number of events
		5:  "NULL::bigint",                                // no exact expected version
		6:  quoteLiteral(actor.String()) + "::uuid",       // actor_id
		7:  "gen_random_uuid()",                           // correlation_id
		8:  "'{}'::jsonb",                                 // metadata
		9:  "ARRAY[gen_random_uuid()]",                    // event ids
		10: "ARRAY[" + quoteLiteral(benchEventType) + "]", // event types
		11: "ARRAY[1]",                                    // schema versions
		12: "ARRAY[" + quoteLiteral(benchEventData) + "]", // data
		13: "ARRAY[NULL::uuid]",                           // causation ids
		14: "gen_random_uuid()",                           // command id
		15: "NULL::bytea",                                 // request hash
	})
	return "\\startpipeline\n" + scope + ";\n" + appendSQL + ";\n\\endpipeline\n"
}

var paramRe = regexp.MustCompile(`\$([0-9]+)`)

// bindLiterals replaces each $n in sql by values[n], parenthesised. It panics
// on a parameter without a value: the store's SQL changed and the script must
// follow it.
func bindLiterals(sql string, values map[int]string) string {
	return paramRe.ReplaceAllStringFunc(sql, func(p string) string {
		n, _ := strconv.Atoi(p[1:])
		v, ok := values[n]
		if !ok {
			panic(fmt.Sprintf("pgbench script: no value for parameter %s of the store's SQL", p))
		}
		return "(" + v + ")"
	})
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// plainInsertScript is the physical baseline: a plain durable single-row
// INSERT of the same payload, one transaction per row (autocommit).
func plainInsertScript() string {
	return "INSERT INTO " + plainInsertTable + " (data) VALUES (" + quoteLiteral(benchEventData) + "::jsonb);\n"
}

// pgbenchScripts are the paths of figure 2's two pgbench scripts.
type pgbenchScripts struct {
	sameSQL     string // the store's own append statements (pgbenchScript)
	plainInsert string // the physical baseline (plainInsertScript)
}

func writePgbenchScripts(tenant, actor uuid.UUID) (s pgbenchScripts, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "accountdb-bench-")
	if err != nil {
		return s, nil, err
	}
	s = pgbenchScripts{sameSQL: filepath.Join(dir, "append.sql"), plainInsert: filepath.Join(dir, "plain_insert.sql")}
	for path, text := range map[string]string{s.sameSQL: pgbenchScript(tenant, actor), s.plainInsert: plainInsertScript()} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			os.RemoveAll(dir)
			return s, nil, err
		}
	}
	return s, func() { os.RemoveAll(dir) }, nil
}

var (
	tpsRe     = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)
	txRe      = regexp.MustCompile(`(?m)^number of transactions actually processed: ([0-9]+)`)
	failedRe  = regexp.MustCompile(`(?m)^number of failed transactions: ([0-9]+)`)
	latencyRe = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
)

// runPgbench runs the script as the service role on the bench database, in
// prepared mode (pgx, too, prepares and caches its statements).
func runPgbench(ctx context.Context, bin, script, appURL string, clients int, d time.Duration) (pgbenchResult, error) {
	res := pgbenchResult{Clients: clients, Threads: min(2, clients), runs: 1}
	stop := startProgress(fmt.Sprintf("pgbench %s, %d clients", filepath.Base(script), clients), d, func() string { return "" })
	defer stop()
	secs := max(1, int(d.Round(time.Second)/time.Second))
	cmd := exec.CommandContext(ctx, bin, "--no-vacuum", "--protocol=prepared",
		"--file="+script, "--client="+strconv.Itoa(clients), "--jobs="+strconv.Itoa(res.Threads),
		"--time="+strconv.Itoa(secs), appURL)
	cmd.Env = append(os.Environ(), "PGAPPNAME=accountdb-bench-pgbench")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		return res, fmt.Errorf("pgbench -c %d: %w\n%s", clients, err, out.String())
	}
	text := out.String()
	m := tpsRe.FindStringSubmatch(text)
	if m == nil {
		return res, fmt.Errorf("pgbench -c %d: no tps in its output:\n%s", clients, text)
	}
	res.TPS, _ = strconv.ParseFloat(m[1], 64)
	if m := txRe.FindStringSubmatch(text); m != nil {
		res.Transactions, _ = strconv.Atoi(m[1])
	}
	if m := failedRe.FindStringSubmatch(text); m != nil {
		res.Failed, _ = strconv.Atoi(m[1])
	}
	if m := latencyRe.FindStringSubmatch(text); m != nil {
		ms, _ := strconv.ParseFloat(m[1], 64)
		res.LatencyAvg = time.Duration(ms * float64(time.Millisecond))
	}
	if res.Failed > 0 || res.Transactions == 0 {
		return res, errors.New("pgbench: transactions failed or none processed:\n" + text)
	}
	return res, nil
}
