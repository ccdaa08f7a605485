package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/tenantdb"
	"github.com/google/uuid"
)

// runReplay: `replay --stream <type-uuid> [--until <RFC 3339>] [--tenant <uuid>]`
// prints a stream's timeline and the aggregate it adds up to.
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	cfg := bindConfig(fs)
	streamArg := fs.String("stream", "", "the stream, <type>-<uuid> (e.g. vm-0190f3c4-…); required")
	untilArg := fs.String("until", "", "replay only the events recorded at or before this RFC 3339 instant")
	tenantArg := fs.String("tenant", "", "read as this tenant (row-level security); default: across tenants, as the system")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	o, err := replayOptions(*streamArg, *untilArg, *tenantArg)
	if err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	pool, err := cfg.openAppPool(ctx, 2, "accountdb-replay")
	if err != nil {
		return err
	}
	defer pool.Close()
	priv, err := openPrivacy(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer priv.Close()
	return replay(ctx, priv.Store(app.NewStore(eventstore.New(pool, nil))), o, stdout)
}

// replayArgs is a parsed replay command line.
type replayArgs struct {
	stream eventlog.StreamID
	until  time.Time
	scope  tenantdb.Scope
}

func replayOptions(stream, until, tenant string) (replayArgs, error) {
	var o replayArgs
	if stream == "" {
		return o, errors.New("usage: accountdb replay --stream <type>-<uuid> [--until <RFC 3339>] [--tenant <uuid>]")
	}
	s, err := eventlog.ParseStreamID(stream)
	if err != nil {
		return o, fmt.Errorf("--stream: %w", err)
	}
	o.stream, o.scope = s, tenantdb.System()
	if until != "" {
		if o.until, err = time.Parse(time.RFC3339Nano, until); err != nil {
			return o, fmt.Errorf("--until %q: want an RFC 3339 date-time such as 2024-05-01T12:00:00Z", until)
		}
	}
	if tenant != "" {
		t, err := uuid.Parse(tenant)
		if err != nil {
			return o, fmt.Errorf("--tenant %q: not a UUID", tenant)
		}
		o.scope = tenantdb.Tenant(t)
	}
	return o, nil
}

// errEmptyStream: nothing to replay (no such stream, another tenant's, or
// nothing recorded by --until).
var errEmptyStream = errors.New("no events")

// replay prints one line per event, then the resulting aggregate as indented
// JSON (or, for stream types without one, the number of events).
func replay(ctx context.Context, store *eventstore.Store, o replayArgs, w io.Writer) error {
	// The aggregate needs its tenant, which the first event tells.
	first, err := store.ReadStreamUntil(ctx, o.scope, o.stream, 1, o.until, 1)
	if err != nil {
		return err
	}
	if len(first) == 0 {
		return fmt.Errorf("%s: %w", o.stream, errEmptyStream)
	}
	agg, hasAgg := domain.NewAggregate(o.stream.Type, first[0].TenantID, o.stream.ID)

	fmt.Fprintf(w, "stream %s (tenant %s)", o.stream, first[0].TenantID)
	if !o.until.IsZero() {
		fmt.Fprintf(w, " until %s", o.until.UTC().Format(time.RFC3339Nano))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tRECORDED AT\tACTOR\tEVENT\tDATA")
	n, err := commands.ReplayUntil(ctx, store, o.scope, o.stream, o.until, agg, func(e eventlog.Event, _ domain.Event) {
		actor := "system"
		if e.ActorID != uuid.Nil {
			actor = e.ActorID.String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.StreamVersion, e.RecordedAt.UTC().Format("2006-01-02 15:04:05.000000Z"),
			actor, e.Type, compactData(e.Data))
	})
	if err != nil {
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !hasAgg {
		fmt.Fprintf(w, "\n%d events (no aggregate for stream type %q)\n", n, o.stream.Type)
		return nil
	}
	if c, ok := agg.(*domain.Cluster); ok {
		c.SealedSecret = redacted
	}
	state, err := json.MarshalIndent(agg, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nstate after %d events (%T):\n%s\n", n, agg, state)
	return nil
}

const redacted = "(sealed)"

// maxDataWidth keeps a timeline line readable.
const maxDataWidth = 120

// compactData is an event's data on one line: keys sorted, secrets (sealed
// or not) left out, long values cut.
func compactData(data []byte) string {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return cutLine(string(data))
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := m[k]
		if strings.Contains(k, "secret") || strings.Contains(k, "password") {
			v = redacted
		}
		b, _ := json.Marshal(v)
		parts = append(parts, k+"="+string(b))
	}
	return cutLine(strings.Join(parts, " "))
}

func cutLine(s string) string {
	if r := []rune(s); len(r) > maxDataWidth {
		return string(r[:maxDataWidth-1]) + "…"
	}
	return s
}
