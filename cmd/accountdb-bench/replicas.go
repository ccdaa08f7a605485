package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/accountdb/accountdb/api/pglimits"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/projections"
	"github.com/google/uuid"
)

// Figure 9: issue 19's figures for several `serve` replicas over one
// database and NATS server.
//
//   - Read-your-writes: a PATCH on the first replica, then a GET with its
//     X-Consistency-Token, with one replica and with two (read on the same
//     and on the other): issue 19 measured the other replica's wait at p50
//     0.8 s before the projectors stopped fighting over messages.
//   - Catch-up after a fault: the replica running a projector is held back
//     while a backlog accumulates, then stops; the standby takes over and
//     catches up. Its rate against a rebuild's (issue 19: ~4 events/s).
//   - Shared limits: the cost of one counted request in PostgreSQL.
type replicasConfig struct {
	Skip     bool
	Rounds   int
	Backlog  int
	LimitDur time.Duration
}

func replicasFlags(fs *flag.FlagSet, c *replicasConfig) {
	fs.BoolVar(&c.Skip, "skip-replicas", false, "skip the replicas benchmark (figure 9)")
	fs.IntVar(&c.Rounds, "replicas-rounds", 100, "write + consistent read rounds per read-your-writes case")
	fs.IntVar(&c.Backlog, "replicas-backlog", 5000, "events a held-back projector falls behind before its replica stops")
	fs.DurationVar(&c.LimitDur, "replicas-limit-duration", 2*time.Second, "how long each shared-limit case counts")
}

func (c replicasConfig) validate() error {
	if c.Rounds < 1 || c.Backlog < 1 || c.LimitDur < 100*time.Millisecond {
		return errors.New("-replicas-rounds and -replicas-backlog must be positive, -replicas-limit-duration at least 100ms")
	}
	return nil
}

type rywCase struct {
	Label                        string
	P50, P99, Max, ReadP50, RP99 time.Duration
}

type replicasResult struct {
	RYW                      []rywCase
	Backlog                  int
	CatchUp, Rebuild         time.Duration
	RebuildEvents            int64
	Limits                   []limitCase
	CatchUpRate, RebuildRate float64
}

// replicasPhase runs figure 9 on a core of its own.
func (b *bench) replicasPhase(ctx context.Context) (err error) {
	cfg := b.cfg.Replicas
	stopBoot := startProgress("figure 9: starting two core replicas", 0, func() string { return "" })
	core, err := startCore(ctx, b.cfg.DatabaseURL)
	stopBoot()
	if err != nil {
		return err
	}
	defer func() {
		if serr := core.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	res := &replicasResult{Backlog: cfg.Backlog}
	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	token, tenant, err := replicasAdmin(ctx, core.sys, client)
	if err != nil {
		return err
	}
	c, err := rywRounds(ctx, client, "one replica", core.sys.URL(), core.sys.URL(), token, tenant, cfg.Rounds)
	if err != nil {
		return err
	}
	res.RYW = append(res.RYW, c)
	second, _, err := core.startReplica(ctx)
	if err != nil {
		return err
	}
	for _, r := range []struct{ label, url string }{{"two replicas, read on the same", core.sys.URL()}, {"two replicas, read on the other", second.URL()}} {
		c, err := rywRounds(ctx, client, r.label, core.sys.URL(), r.url, token, tenant, cfg.Rounds)
		if err != nil {
			return err
		}
		res.RYW = append(res.RYW, c)
	}
	if err := catchUpAfterFailover(ctx, core, res); err != nil {
		return err
	}
	if res.Limits, err = limitCosts(ctx, core, cfg.LimitDur); err != nil {
		return err
	}
	b.rep.Replicas = res
	return nil
}

// replicasAdmin signs a platform administrator in and creates the tenant
// the rounds rename.
func replicasAdmin(ctx context.Context, sys *app.System, client *http.Client) (string, uuid.UUID, error) {
	email, password := "replicas-"+uuid.NewString()[:8]+"@example.com", "bench-"+uuid.NewString()
	if _, err := sys.Commands.CreateUser(ctx, platformActor(), commands.Options{}, commands.NewUser{TenantID: domain.PlatformTenant,
		Email: email, DisplayName: "replicas bench", Password: password, Roles: []string{auth.RolePlatformAdmin}}); err != nil {
		return "", uuid.Nil, fmt.Errorf("user: %w", err)
	}
	t, err := sys.Commands.CreateTenant(ctx, platformActor(), commands.Options{}, "ryw", domain.Quota{MaxVMs: 1, MaxCores: 1, MaxMemoryMB: 1, MaxDiskGB: 1})
	if err != nil {
		return "", uuid.Nil, fmt.Errorf("tenant: %w", err)
	}
	token, err := sseLogin(client, sys.URL(), email, password)
	return token, t.ID, err
}

// catchUpAfterFailover holds tenant_activity (which applies every event)
// back on the replica running it, appends a backlog, stops that replica
// (its messages in hand unacknowledged: gaps for the next runner), and
// times the standby from the release until the read model holds the whole
// log; then a rebuild of the same projector over the same log.
func catchUpAfterFailover(ctx context.Context, core *benchCore, res *replicasResult) error {
	p := projections.TenantActivity{}
	admin := core.db.admin
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock(80, hashtext($1))`, projections.CheckpointName(p.Name())); err != nil {
		return err
	}
	held := true
	defer func() {
		if held {
			_, _ = admin.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(80, hashtext($1))`, projections.CheckpointName(p.Name()))
		}
	}()
	if err := appendBacklog(ctx, core, res.Backlog); err != nil {
		return err
	}
	var head int64
	if err := admin.QueryRow(ctx, `SELECT max(global_position) FROM events`).Scan(&head); err != nil {
		return err
	}
	if err := waitUntil(ctx, 2*time.Minute, "the relay to publish the backlog", func() (bool, error) {
		var relayed int64
		err := admin.QueryRow(ctx, `SELECT global_position FROM checkpoints WHERE name = 'relay'`).Scan(&relayed)
		return relayed >= head, err
	}); err != nil {
		return err
	}
	// The first replica started first: it runs the projectors and the relay.
	if err := core.stopSys(); err != nil {
		return err
	}
	began := time.Now()
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_unlock(80, hashtext($1))`, projections.CheckpointName(p.Name())); err != nil {
		return err
	}
	held = false
	if err := waitUntil(ctx, 5*time.Minute, "the standby to catch up", func() (bool, error) {
		var at int64
		err := admin.QueryRow(ctx, `SELECT global_position FROM checkpoints WHERE name = $1`, projections.CheckpointName(p.Name())).Scan(&at)
		return at >= head, err
	}); err != nil {
		return err
	}
	res.CatchUp = time.Since(began)
	res.CatchUpRate = float64(res.Backlog) / res.CatchUp.Seconds()
	owner, err := core.db.ownerPool(ctx)
	if err != nil {
		return err
	}
	defer owner.Close()
	began = time.Now()
	rb, err := projections.Rebuild(ctx, owner, core.db.store, p, io.Discard)
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", p.Name(), err)
	}
	res.Rebuild, res.RebuildEvents = time.Since(began), rb.Events
	res.RebuildRate = float64(rb.Events) / res.Rebuild.Seconds()
	return nil
}

// limitCase is the cost of one counted request.
type limitCase struct {
	Label   string
	Clients int
	PerHit  time.Duration // latency of one
	Hits    int
	Rate    float64 // counted requests per second, all clients
}

// limitCosts counts requests in PostgreSQL as the API's limits do: on 64
// keys (many users) and on one (one tenant's limit, serialised by its row).
func limitCosts(ctx context.Context, core *benchCore, d time.Duration) ([]limitCase, error) {
	s := pglimits.New(core.db.store.Pool(), slog.New(slog.DiscardHandler))
	var out []limitCase
	for _, keys := range []int{64, 1} {
		for _, clients := range []int{1, 4} {
			c, err := countHits(ctx, s, keys, clients, d)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

func (r *replicasResult) print(out io.Writer) {
	fmt.Fprintln(out, "9. Replicas (issue 19): two core instances over one database and NATS server")
	for _, c := range r.RYW {
		fmt.Fprintf(out, "   read-your-writes, %s: PATCH + consistent GET p50 %s  p99 %s  max %s; the GET alone p50 %s  p99 %s\n",
			c.Label, ms(c.P50), ms(c.P99), ms(c.Max), ms(c.ReadP50), ms(c.RP99))
	}
	fmt.Fprintf(out, "   catch-up after a failover: %d events behind, the standby caught up in %s (%.0f events/s); a rebuild of the same projector: %d events in %s (%.0f events/s)\n",
		r.Backlog, r.CatchUp.Round(time.Millisecond), r.CatchUpRate, r.RebuildEvents, r.Rebuild.Round(time.Millisecond), r.RebuildRate)
	for _, l := range r.Limits {
		fmt.Fprintf(out, "   shared limit, %s, %d client(s): %s per counted request, %.0f counted/s (%d in all)\n", l.Label, l.Clients, ms(l.PerHit), l.Rate, l.Hits)
	}
	fmt.Fprintln(out)
}
