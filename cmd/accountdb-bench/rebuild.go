package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/accountdb/accountdb/projections"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
)

// Figure 13 (issue 16): a projection rebuild over a log of a million events,
// as `accountdb projections rebuild` runs it, progress bar included.

type rebuildConfig struct {
	Skip    bool
	Events  int
	Tenants int
}

func rebuildFlags(fs *flag.FlagSet, c *rebuildConfig) {
	fs.BoolVar(&c.Skip, "skip-rebuild", false, "skip the projection rebuild benchmark (figure 13)")
	fs.IntVar(&c.Events, "rebuild-events", 1_000_000, "events in the log the rebuild replays")
	fs.IntVar(&c.Tenants, "rebuild-tenants", 4, "tenants the rebuild's events belong to, seeded at once")
}

func (c rebuildConfig) validate() error {
	if c.Events < 1 || c.Tenants < 1 {
		return errors.New("-rebuild-events and -rebuild-tenants must be positive")
	}
	return nil
}

// barRebuildRate is issue 16's bar for figure 13.
const barRebuildRate = 100_000 // events per second

type rebuildResult struct {
	Seeded    int
	SeedTime  time.Duration
	Projector string
	Events    int64
	Elapsed   time.Duration
	// Counted is sum(event_count) of the rebuilt tenant_activity: every
	// event replayed must be counted once.
	Counted int64
	// Bar is the progress bar's last frame; Frames how many it drew.
	Bar    string
	Frames int
}

func (r rebuildResult) Rate() float64 { return float64(r.Events) / r.Elapsed.Seconds() }

// rebuildPhase seeds a fresh database with the events, hash chains and all,
// through Store.Append (appends of 1,000 events, two writers per tenant),
// then rebuilds tenant_activity, the read model every event touches.
func (b *bench) rebuildPhase(ctx context.Context) (err error) {
	c := b.cfg.Rebuild
	db, err := openBenchDB(ctx, b.cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer func() {
		if derr := db.drop(); derr != nil && err == nil {
			err = derr
		}
	}()
	rb := &bench{cfg: b.cfg, db: db, rep: b.rep, actor: uuid.New()}
	res := rebuildResult{Seeded: c.Events, Projector: projections.TenantActivity{}.Name()}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for i := range c.Tenants {
		n := c.Events / c.Tenants
		if i == 0 {
			n += c.Events % c.Tenants
		}
		g.Go(func() error {
			_, err := rb.seedEvents(gctx, fmt.Sprintf("seeding %d events of tenant %d/%d", n, i+1, c.Tenants), uuid.New(), n, 2, nil)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	res.SeedTime = time.Since(start)
	if _, err := db.admin.Exec(ctx, "ANALYZE events"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}

	owner, err := projections.OpenOwnerPool(ctx, db.adminURL)
	if err != nil {
		return err
	}
	defer owner.Close()
	bar := &barCapture{}
	stop := startProgress("rebuild of "+res.Projector, 0, bar.last)
	out, err := projections.Rebuild(ctx, owner, db.store, projections.TenantActivity{}, bar)
	stop()
	if err != nil {
		return err
	}
	res.Events, res.Elapsed = out.Events, out.Duration
	res.Bar, res.Frames = bar.last(), bar.frames()
	if err := db.admin.QueryRow(ctx, `SELECT coalesce(sum(event_count), 0) FROM tenant_activity`).Scan(&res.Counted); err != nil {
		return fmt.Errorf("count the rebuilt model: %w", err)
	}
	b.rep.Rebuild = &res
	return nil
}

// barCapture is the progress bar's terminal: it keeps the frames the bar
// draws (each starts with a carriage return) so the report can show them.
type barCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *barCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *barCapture) framesText() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, f := range strings.Split(c.buf.String(), "\r") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (c *barCapture) frames() int { return len(c.framesText()) }

func (c *barCapture) last() string {
	f := c.framesText()
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

func (r *rebuildResult) print(out io.Writer) {
	fmt.Fprintf(out, "13. Projection rebuild (projections.Rebuild, as `accountdb projections rebuild %s` runs it)\n", r.Projector)
	fmt.Fprintf(out, "   seeded %d events in %s (%.0f events/s, Store.Append of 1000 events, hash chains and all)\n",
		r.Seeded, r.SeedTime.Round(time.Millisecond), float64(r.Seeded)/r.SeedTime.Seconds())
	fmt.Fprintf(out, "   rebuilt %s from %d events in %s: %.0f events/s; the rebuilt model counts %d events\n",
		r.Projector, r.Events, r.Elapsed.Round(time.Millisecond), r.Rate(), r.Counted)
	fmt.Fprintf(out, "   progress bar: %d frames drawn, the last: %s\n\n", r.Frames, r.Bar)
}

func (r *rebuildResult) printBars(out *os.File) {
	verdict(out, fmt.Sprintf("rebuild ≥ %d events/s", barRebuildRate),
		r.Rate() >= barRebuildRate && r.Counted == r.Events && r.Events >= int64(r.Seeded),
		fmt.Sprintf("%.0f events/s over %d events", r.Rate(), r.Events))
}
