package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/accountdb/accountdb/projections"
	"github.com/jackc/pgx/v5"
)

// modelDump is a projector's read model: each of its tables, in Tables()
// order, as rows keyed by primary key.
//
// Every column is compared; none is excluded. Each value a projector writes
// derives from the events (times from recorded_at, versions from the stream,
// positions from the log), never from the moment of projection (now(),
// time.Now) or from anything outside its own tables, so a live model and a
// rebuilt one must agree on all of them. A column that legitimately differs
// would have to be named and justified here; a projector that needs one is
// more likely not deterministic.
type modelDump []tableDump

type tableDump struct {
	table string
	// rows maps a row's primary key (a JSON array of its key columns) to the
	// whole row as PostgreSQL's canonical jsonb text.
	rows map[string]string
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// dumpModel reads p's tables through q, which must see every tenant's rows
// (a superuser connection: row-level security would hide them otherwise).
func dumpModel(t *testing.T, q querier, p projections.Projector) modelDump {
	t.Helper()
	var m modelDump
	for _, table := range p.Tables() {
		m = append(m, dumpTable(t, q, table))
	}
	return m
}

func dumpTable(t *testing.T, q querier, table string) tableDump {
	t.Helper()
	ctx := context.Background()
	qualified := pgx.Identifier{"public", table}.Sanitize()
	rows, err := q.Query(ctx, `SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)`, qualified)
	if err != nil {
		t.Fatal(err)
	}
	keyCols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	// Without a primary key, the whole row is its key (numbered when repeated).
	key := "to_jsonb(t)"
	if len(keyCols) > 0 {
		cols := make([]string, len(keyCols))
		for i, c := range keyCols {
			cols[i] = pgx.Identifier{"t", c}.Sanitize()
		}
		key = "jsonb_build_array(" + strings.Join(cols, ", ") + ")"
	}
	rows, err = q.Query(ctx, `SELECT `+key+`::text, to_jsonb(t)::text FROM `+qualified+` t`)
	if err != nil {
		t.Fatal(err)
	}
	d := tableDump{table: table, rows: map[string]string{}}
	seen := map[string]int{}
	var k, row string
	if _, err := pgx.ForEachRow(rows, []any{&k, &row}, func() error {
		if seen[k]++; seen[k] > 1 {
			k = fmt.Sprintf("%s #%d", k, seen[k])
		}
		d.rows[k] = row
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return d
}

// diffModels describes how got differs from want, row by row and column by
// column, with keys sorted; "" when they are equal.
func diffModels(wantName string, want modelDump, gotName string, got modelDump) string {
	var b strings.Builder
	for i := range max(len(want), len(got)) {
		if i >= len(want) || i >= len(got) || want[i].table != got[i].table {
			return fmt.Sprintf("different tables: %s %v, %s %v", wantName, tableNames(want), gotName, tableNames(got))
		}
		w, g := want[i].rows, got[i].rows
		for _, k := range slices.Sorted(maps.Keys(w)) {
			switch gr, ok := g[k]; {
			case !ok:
				fmt.Fprintf(&b, "%s %s: only %s: %s\n", want[i].table, k, wantName, w[k])
			case gr != w[k]:
				fmt.Fprintf(&b, "%s %s: %s\n", want[i].table, k, diffColumns(wantName, w[k], gotName, gr))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(g)) {
			if _, ok := w[k]; !ok {
				fmt.Fprintf(&b, "%s %s: only %s: %s\n", got[i].table, k, gotName, g[k])
			}
		}
	}
	return b.String()
}

func diffColumns(wantName, want, gotName, got string) string {
	var w, g map[string]json.RawMessage
	if json.Unmarshal([]byte(want), &w) != nil || json.Unmarshal([]byte(got), &g) != nil {
		return fmt.Sprintf("%s %s, %s %s", wantName, want, gotName, got)
	}
	var diffs []string
	for _, c := range slices.Sorted(maps.Keys(w)) {
		if string(w[c]) != string(g[c]) {
			diffs = append(diffs, fmt.Sprintf("%s: %s %s, %s %s", c, wantName, w[c], gotName, g[c]))
		}
	}
	return strings.Join(diffs, "; ")
}

func tableNames(m modelDump) []string {
	out := make([]string, len(m))
	for i, d := range m {
		out[i] = d.table
	}
	return out
}
