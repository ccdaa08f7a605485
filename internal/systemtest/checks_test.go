package systemtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/internal/stacktest"
	"github.com/accountdb/accountdb/projections"
	"github.com/accountdb/accountdb/pvesim"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
)

// requestTypes are the events that ask the agent for something; each gets
// exactly one result, an event caused by it.
const requestTypes = `('vm_create_requested', 'vm_action_requested', 'vm_resize_requested', 'vm_snapshot_requested')`

// requestOutcomes counts the tenant's requests up to position upTo (0: all)
// without a result yet and those with more than one.
func requestOutcomes(t *testing.T, conn *pgx.Conn, tenant uuid.UUID, upTo int64) (pending, repeated int) {
	t.Helper()
	err := conn.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE n = 0), count(*) FILTER (WHERE n > 1) FROM (
		SELECT r.event_id, (SELECT count(*) FROM events x WHERE x.causation_id = r.event_id AND x.event_type NOT IN `+requestTypes+`) AS n
		FROM events r WHERE r.tenant_id = $1 AND r.event_type IN `+requestTypes+` AND ($2 = 0 OR r.global_position <= $2)) o`,
		tenant, upTo).Scan(&pending, &repeated)
	if err != nil {
		t.Fatal(err)
	}
	return pending, repeated
}

// settle waits until every request of the tenant accepted so far has its
// result (the trickle goes on meanwhile), and returns how long that took.
func settle(t *testing.T, conn *pgx.Conn, tenant uuid.UUID, what string) time.Duration {
	t.Helper()
	began := time.Now()
	deadline := began.Add(90 * time.Second)
	upTo := int64(count(t, conn, `SELECT coalesce(max(global_position), 0) FROM events WHERE tenant_id = $1`, tenant))
	for {
		pending, _ := requestOutcomes(t, conn, tenant, upTo)
		if pending == 0 {
			return time.Since(began)
		}
		if time.Now().After(deadline) {
			rows, _ := conn.Query(context.Background(), `SELECT r.event_type, r.stream_id, r.global_position, r.recorded_at FROM events r
				WHERE r.tenant_id = $1 AND r.event_type IN `+requestTypes+` AND r.global_position <= $2
				AND NOT EXISTS (SELECT 1 FROM events x WHERE x.causation_id = r.event_id AND x.event_type NOT IN `+requestTypes+`)`, tenant, upTo)
			var streams []string
			for rows.Next() {
				v, _ := rows.Values()
				t.Logf("pending: %v", v)
				streams = append(streams, v[1].(string))
			}
			rows.Close()
			for _, st := range streams {
				evs, _ := conn.Query(context.Background(), `SELECT global_position, event_type, event_id, causation_id, data::text, recorded_at FROM events WHERE stream_id = $1 ORDER BY stream_version`, st)
				for evs.Next() {
					v, _ := evs.Values()
					t.Logf("  %s: %v", st, v)
				}
				evs.Close()
			}
			t.Fatalf("%s: %d accepted commands still without a result after 90s", what, pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logIDs is every event id in log order.
func logIDs(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT event_id::text FROM events ORDER BY transaction_id, global_position`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// streamHoldsLog checks that the events stream holds the log, each event
// once and in log order, and returns how many events the log holds. The
// log can still grow while they are compared (anything appended after the
// half second of calm quiesce waits for: in CI the stream once held five
// events more than the log read just before it), so the log is read before
// the stream and again after it: the stream must hold all of the first,
// and be the start of the second.
func streamHoldsLog(t *testing.T, conn *pgx.Conn, js jetstream.JetStream) int {
	t.Helper()
	before := logIDs(t, conn)
	var got []string
	stacktest.Eventually(t, 60*time.Second, "the stream to hold the whole log", func() bool {
		got = streamIDs(t, js)
		return len(got) >= len(before)
	})
	after := logIDs(t, conn)
	if len(got) <= len(after) && slices.Equal(got, after[:len(got)]) {
		if n := len(after) - len(before); n > 0 {
			t.Logf("%d events appended while the stream was compared with the log", n)
		}
		return len(after)
	}
	seen, inLog := map[string]int{}, map[string]bool{}
	for _, id := range after {
		inLog[id] = true
	}
	for i, id := range got {
		if j, dup := seen[id]; dup {
			t.Logf("event %s is on the stream twice: sequences %d and %d", id, j+1, i+1)
		}
		if !inLog[id] {
			t.Logf("event %s (sequence %d) is on the stream, not in the log", id, i+1)
		}
		seen[id] = i
	}
	t.Errorf("the stream holds %d messages, the log %d events (%d before the stream was read), or in another order (lost or duplicated)",
		len(got), len(after), len(before))
	return len(after)
}

// tenantPositions is the tenant's event positions in log order: what its
// event feed must deliver.
func tenantPositions(t *testing.T, conn *pgx.Conn, tenant uuid.UUID) []int64 {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT global_position FROM events WHERE tenant_id = $1 ORDER BY transaction_id, global_position`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// streamIDs is every message id of ACCOUNTDB_EVENTS in stream order.
func streamIDs(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for uint64(len(out)) < info.State.Msgs && ctx.Err() == nil {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, m.Headers().Get(jetstream.MsgIDHeader))
		}
	}
	return out
}

// guestsByVM counts the simulator's guests per AccountDB VM.
func guestsByVM(sim *pvesim.Server) map[uuid.UUID]int {
	out := map[uuid.UUID]int{}
	for _, g := range sim.Simulator().Guests() {
		for _, tag := range protocol.SplitTags(g.Config["tags"]) {
			if id, ok := protocol.ParseVMTag(tag); ok {
				out[id]++
			}
		}
	}
	return out
}

// modelsEqualRebuild rebuilds every read model from the event store, as
// `accountdb projections rebuild` does, and compares each table with the
// one the live projectors built.
func modelsEqualRebuild(t *testing.T, s *stacktest.Stack) {
	t.Helper()
	ctx := context.Background()
	owner, err := projections.OpenOwnerPool(ctx, s.DB.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	admin := s.DB.AdminConn(t)
	// Reveal sealed personal fields as the CLI's rebuild does
	// (docs/PRIVACY.md): a rebuilt model holds what the live one does.
	priv, err := app.OpenPrivacy(ctx, s.DB.AppURL, s.Vault)
	if err != nil {
		t.Fatal(err)
	}
	defer priv.Close()
	store := priv.Store(app.NewStore(eventstore.New(s.DB.App, nil)))
	for _, p := range app.Projectors() {
		live := dumpTables(t, admin, p.Tables())
		if _, err := projections.Rebuild(ctx, owner, store, p, nil); err != nil {
			t.Fatalf("rebuild %s: %v", p.Name(), err)
		}
		if rebuilt := dumpTables(t, admin, p.Tables()); rebuilt != live {
			t.Errorf("%s: the live read model differs from a rebuild:\nonly live:    %s\nonly rebuilt: %s", p.Name(),
				onlyIn(live, rebuilt), onlyIn(rebuilt, live))
		}
	}
}

// quiesce waits until nothing is appended any more and every projector has
// applied the whole log: what a comparison with a rebuild needs.
func quiesce(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	last, stable := -1, 0
	stacktest.Eventually(t, 60*time.Second, "the log to stop growing and the projectors to reach its end", func() bool {
		head := count(t, conn, `SELECT coalesce(max(global_position), 0) FROM events`)
		behind := count(t, conn, `SELECT count(*) FROM checkpoints c WHERE c.name LIKE 'projector:%'
			AND c.global_position < (SELECT coalesce(max(global_position), 0) FROM events)`)
		if head == last && behind == 0 {
			stable++
		} else {
			last, stable = head, 0
		}
		return stable >= 20 // 20 reads 25 ms apart: half a second of calm
	})
}

// onlyIn lists (a few of) the lines of a that b lacks.
func onlyIn(a, b string) string {
	have := map[string]int{}
	for _, l := range strings.Split(b, "\n") {
		have[l]++
	}
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if have[l] > 0 {
			have[l]--
			continue
		}
		if out = append(out, l); len(out) == 5 {
			break
		}
	}
	return strings.Join(out, "\n              ")
}

func dumpTables(t *testing.T, conn *pgx.Conn, tables []string) string {
	t.Helper()
	var b strings.Builder
	for _, table := range tables {
		var rows string
		err := conn.QueryRow(context.Background(), fmt.Sprintf(
			`SELECT coalesce(string_agg(to_jsonb(x)::text, E'\n' ORDER BY to_jsonb(x)::text), '') FROM %s x`,
			pgx.Identifier{table}.Sanitize())).Scan(&rows)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		fmt.Fprintf(&b, "%s:\n%s\n", table, rows)
	}
	return b.String()
}
