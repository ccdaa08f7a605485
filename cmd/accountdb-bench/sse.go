package main

// Figure 6: live subscribers. Many Server-Sent Events subscribers hold
// GET /v1/events open on the real core (app.System over HTTP, on loopback)
// while events are appended at a steady rate; every subscriber must receive
// every event of its tenant, in order, and the figure is the delivery lag
// from the append's commit (when Store.Append returns) to the moment the
// subscriber has read the event off its connection.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/accountdb/accountdb/api"

	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"
)

// barSSELagP99 is the bar of figure 6 (docs/BENCHMARKS.md).
const barSSELagP99 = 250 * time.Millisecond

// sseWritersPerTenant is how many writers share each tenant's append rate.
const sseWritersPerTenant = 4

// sseConfig is figure 6's knobs.
type sseConfig struct {
	Skip        bool
	Subscribers int
	Tenants     int
	Rate        float64
	Duration    time.Duration
}

func sseFlags(fs *flag.FlagSet, c *sseConfig) {
	fs.BoolVar(&c.Skip, "skip-sse", false, "skip the live subscribers benchmark (figure 6)")
	fs.IntVar(&c.Subscribers, "sse-subscribers", 500, "concurrent GET /v1/events subscribers, spread evenly over -sse-tenants")
	fs.IntVar(&c.Tenants, "sse-tenants", 5, "tenants the subscribers and the appends are spread over")
	fs.Float64Var(&c.Rate, "sse-rate", 500, "events/s appended in all, spread evenly over the tenants")
	fs.DurationVar(&c.Duration, "sse-duration", 15*time.Second, "how long events are appended")
}

func (c sseConfig) validate() error {
	if c.Subscribers < 1 || c.Tenants < 1 || c.Tenants > c.Subscribers || c.Rate <= 0 || c.Duration <= 0 {
		return errors.New("-sse-subscribers, -sse-tenants (at most the subscribers), -sse-rate and -sse-duration must be positive")
	}
	if per := c.perTenant(); per > api.DefaultLimits.StreamsPerTenant {
		return fmt.Errorf("%d subscribers per tenant exceed the server's default cap of %d streams per tenant: raise -sse-tenants",
			per, api.DefaultLimits.StreamsPerTenant)
	}
	return nil
}

// perTenant is the most subscribers one tenant holds.
func (c sseConfig) perTenant() int { return (c.Subscribers + c.Tenants - 1) / c.Tenants }

// usersPerTenant is how many users share a tenant's subscribers so that
// none holds more streams than the server's default cap per user: the
// bench runs with the caps a deployment has, as many dashboards of one
// tenant would.
func (c sseConfig) usersPerTenant() int {
	return (c.perTenant() + api.DefaultLimits.StreamsPerUser - 1) / api.DefaultLimits.StreamsPerUser
}

type sseResult struct {
	Subscribers, Tenants int
	TargetRate           float64
	Appended             int
	AppendTime           time.Duration
	Deliveries           int // events received, over all subscribers
	Expected             int // events that should have been received
	Connect              time.Duration
	Drain                time.Duration // last append to the last delivery
	P50, P99, Max        time.Duration
	RelayP50, RelayP99   time.Duration // commit to a plain JetStream consumer
	Problems             []string
}

// sseTenant is one tenant's appended events.
type sseTenant struct {
	id        uuid.UUID
	tokens    []string // one per user of the tenant
	mu        sync.Mutex
	committed map[int64]time.Time // position -> when its append returned
	positions []int64             // in log order, read back after the run
}

// sseSub is one subscriber's deliveries.
type sseSub struct {
	tenant    *sseTenant
	token     string // of one of the tenant's users
	positions []int64
	received  []time.Time
	count     atomic.Int64
	err       error
}

func (b *bench) ssePhase(ctx context.Context) (err error) {
	c := b.cfg.SSE
	res := &sseResult{Subscribers: c.Subscribers, Tenants: c.Tenants, TargetRate: c.Rate}
	fmt.Printf("\n6. Live subscribers: %d SSE subscribers over %d tenants, %.0f events/s for %s\n",
		c.Subscribers, c.Tenants, c.Rate, c.Duration)

	core, err := startCore(ctx, b.cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer func() {
		if serr := core.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	db, sys := core.db, core.sys

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.Subscribers + 16, DisableCompression: true}}
	defer client.CloseIdleConnections()
	tenants := make([]*sseTenant, c.Tenants)
	for i := range tenants {
		if tenants[i], err = sseNewTenant(ctx, sys, client, i, c.usersPerTenant()); err != nil {
			return err
		}
	}

	// Connect every subscriber; each is ready once the answer's headers are
	// in (its consumer exists), so none misses the first event.
	subCtx, cancelSubs := context.WithCancel(ctx)
	defer cancelSubs()
	subs := make([]*sseSub, c.Subscribers)
	ready := make(chan error, c.Subscribers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range subs {
		t := tenants[i%len(tenants)]
		s := &sseSub{tenant: t, token: t.tokens[(i/len(tenants))%len(t.tokens)]}
		subs[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.err = s.run(subCtx, client, sys.URL(), ready)
		}()
	}
	for range subs {
		select {
		case err := <-ready:
			if err != nil {
				return err
			}
		case <-time.After(time.Minute):
			return errors.New("subscribers did not connect within a minute")
		}
	}
	res.Connect = time.Since(start)

	// A plain JetStream consumer of the same events: the relay's share of
	// the lag (commit to JetStream), apart from the feed's.
	direct, err := sseDirect(subCtx, core.natsURL)
	if err != nil {
		return err
	}

	// Append: sseWritersPerTenant writers per tenant share the tenant's pace,
	// so that a slow append does not lower the rate.
	appendStart := time.Now()
	gctx, stopWriting := context.WithTimeout(ctx, c.Duration)
	defer stopWriting()
	var werr error
	var wmu sync.Mutex
	var writers sync.WaitGroup
	for _, t := range tenants {
		lim := rate.NewLimiter(rate.Limit(c.Rate/float64(len(tenants))), 1)
		for range sseWritersPerTenant {
			writers.Add(1)
			go func() {
				defer writers.Done()
				if err := t.write(gctx, sys.Store, lim); !errors.Is(err, context.DeadlineExceeded) {
					wmu.Lock()
					werr = errors.Join(werr, err)
					wmu.Unlock()
				}
			}()
		}
	}
	writers.Wait()
	res.AppendTime = time.Since(appendStart)
	if werr != nil {
		return werr
	}
	lastAppend := time.Now()
	// Each tenant's events in log order: what every subscriber must get.
	for _, t := range tenants {
		rows, err := db.admin.Query(ctx, `SELECT global_position FROM events WHERE tenant_id = $1 AND event_type = 'bench_tick'
			ORDER BY transaction_id, global_position`, t.id)
		if err != nil {
			return err
		}
		if t.positions, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
			return err
		}
		if len(t.positions) != len(t.committed) {
			return fmt.Errorf("tenant %s: %d events in the log, %d appended", t.id, len(t.positions), len(t.committed))
		}
		res.Appended += len(t.positions)
	}
	for _, s := range subs {
		res.Expected += len(s.tenant.positions)
	}

	// Wait until every subscriber has every event of its tenant.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := 0
		for _, s := range subs {
			got += int(s.count.Load())
		}
		if got >= res.Expected || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancelSubs()
	wg.Wait()

	var lags []time.Duration
	var lastDelivery time.Time
	for i, s := range subs {
		res.Deliveries += len(s.positions)
		want := s.tenant.positions
		if s.err != nil && !errors.Is(s.err, context.Canceled) {
			res.Problems = append(res.Problems, fmt.Sprintf("subscriber %d: %v", i, s.err))
		}
		if len(s.positions) != len(want) {
			res.Problems = append(res.Problems, fmt.Sprintf("subscriber %d received %d events of %d", i, len(s.positions), len(want)))
		}
		for j := range min(len(s.positions), len(want)) {
			if s.positions[j] != want[j] {
				res.Problems = append(res.Problems, fmt.Sprintf("subscriber %d: event %d is position %d, want %d", i, j, s.positions[j], want[j]))
				break
			}
			lags = append(lags, s.received[j].Sub(s.tenant.committed[want[j]]))
			if s.received[j].After(lastDelivery) {
				lastDelivery = s.received[j]
			}
		}
	}
	res.Drain = max(0, lastDelivery.Sub(lastAppend))
	res.P50, res.P99, res.Max = percentiles(lags)
	var relayLags []time.Duration
	direct.mu.Lock()
	for _, t := range tenants {
		for pos, at := range t.committed {
			if got, ok := direct.received[pos]; ok {
				relayLags = append(relayLags, got.Sub(at))
			}
		}
	}
	direct.mu.Unlock()
	res.RelayP50, res.RelayP99, _ = percentiles(relayLags)
	res.print(os.Stdout)
	if len(res.Problems) > 0 {
		return fmt.Errorf("live subscribers: %d problems, first: %s", len(res.Problems), res.Problems[0])
	}
	return nil
}

// sseNewTenant creates a tenant with users tenant administrators and logs
// each in.
func sseNewTenant(ctx context.Context, sys *app.System, client *http.Client, i, users int) (*sseTenant, error) {
	actor := platformActor()
	big := 1_000_000
	t, err := sys.Commands.CreateTenant(ctx, actor, commands.Options{}, fmt.Sprintf("sse-%d", i),
		domain.Quota{MaxVMs: big, MaxCores: big, MaxMemoryMB: big, MaxDiskGB: big})
	if err != nil {
		return nil, fmt.Errorf("tenant: %w", err)
	}
	st := &sseTenant{id: t.ID, committed: map[int64]time.Time{}}
	for u := range users {
		email, password := fmt.Sprintf("sse-%d-%d@example.com", i, u), "bench-"+uuid.NewString()
		if _, err := sys.Commands.CreateUser(ctx, actor, commands.Options{}, commands.NewUser{TenantID: t.ID, Email: email,
			DisplayName: "SSE bench", Password: password, Roles: []string{auth.RoleTenantAdmin}}); err != nil {
			return nil, fmt.Errorf("user: %w", err)
		}
		token, err := sseLogin(client, sys.URL(), email, password)
		if err != nil {
			return nil, err
		}
		st.tokens = append(st.tokens, token)
	}
	return st, nil
}

func sseLogin(client *http.Client, base, email, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := client.Post(base+"/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("login: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken, nil
}

// write appends single-event commands, paced by lim, until ctx ends or an
// append fails.
func (t *sseTenant) write(ctx context.Context, store *eventstore.Store, lim *rate.Limiter) error {
	stream := eventlog.StreamID{Type: "bench", ID: uuid.New()}
	for i := 0; ; i++ {
		if lim.Wait(ctx) != nil { // ctx ended, or would before the next turn
			<-ctx.Done()
			return ctx.Err()
		}
		res, err := store.Append(context.WithoutCancel(ctx), eventstore.Append{Stream: stream, TenantID: t.id,
			Expected: eventstore.Any(), Events: []eventstore.NewEvent{{Type: "bench_tick", Data: map[string]int{"i": i}}}})
		if err != nil {
			return err
		}
		now := time.Now()
		t.mu.Lock()
		t.committed[res.LastPosition] = now
		t.mu.Unlock()
	}
}

// run holds one subscription and records the id and arrival time of each
// event; it reads only the id: line, as a client would before dispatching.
func (s *sseSub) run(ctx context.Context, client *http.Client, base string, ready chan<- error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/events?type=bench_tick", nil)
	if err != nil {
		ready <- err
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := client.Do(req)
	if err != nil {
		ready <- err
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		err := fmt.Errorf("GET /v1/events: %d %s", resp.StatusCode, body)
		ready <- err
		return err
	}
	ready <- nil
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if id, ok := bytes.CutPrefix(line, []byte("id: ")); ok {
			pos, err := strconv.ParseInt(string(bytes.TrimSpace(id)), 10, 64)
			if err != nil {
				return fmt.Errorf("id line %q", line)
			}
			s.positions = append(s.positions, pos)
			s.received = append(s.received, time.Now())
			s.count.Add(1)
		}
	}
}

func (r *sseResult) print(out io.Writer) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "  subscribers connected\t%d in %s\n", r.Subscribers, r.Connect.Round(time.Millisecond))
	fmt.Fprintf(w, "  appended\t%d events in %s (%.0f/s, target %.0f/s)\n", r.Appended, r.AppendTime.Round(time.Millisecond),
		float64(r.Appended)/r.AppendTime.Seconds(), r.TargetRate)
	fmt.Fprintf(w, "  delivered\t%d of %d (%.0f events/s to clients)\n", r.Deliveries, r.Expected, float64(r.Deliveries)/r.AppendTime.Seconds())
	fmt.Fprintf(w, "  lag commit -> client\tp50 %s  p99 %s  max %s  (bar p99 <= %s: %s)\n", r.P50.Round(10*time.Microsecond),
		r.P99.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond), barSSELagP99, passFail(r.P99 <= barSSELagP99 && len(r.Problems) == 0))
	fmt.Fprintf(w, "  of which commit -> JetStream\tp50 %s  p99 %s  (a plain ordered consumer: the relay's share)\n",
		r.RelayP50.Round(10*time.Microsecond), r.RelayP99.Round(10*time.Microsecond))
	fmt.Fprintf(w, "  drain after the last append\t%s\n", r.Drain.Round(time.Millisecond))
	for i, p := range r.Problems {
		if i == 5 {
			fmt.Fprintf(w, "  …\t%d more\n", len(r.Problems)-5)
			break
		}
		fmt.Fprintf(w, "  problem\t%s\n", p)
	}
	w.Flush()
}

func passFail(ok bool) string {
	if ok {
		return "pass"
	}
	return "FAIL"
}

// sseDirectConsumer records when each event reached a plain JetStream
// ordered consumer.
type sseDirectConsumer struct {
	mu       sync.Mutex
	received map[int64]time.Time
}

func sseDirect(ctx context.Context, natsURL string) (*sseDirectConsumer, error) {
	nc, err := nats.Connect(natsURL, nats.Name("accountdb-bench-direct"))
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	cons, err := js.OrderedConsumer(ctx, bus.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"accountdb.events.*.bench.bench_tick"}, DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return nil, err
	}
	d := &sseDirectConsumer{received: map[int64]time.Time{}}
	if _, err := cons.Consume(func(m jetstream.Msg) {
		now := time.Now()
		if pos, _, err := bus.MessagePositions(m.Headers()); err == nil {
			d.mu.Lock()
			d.received[pos.GlobalPosition] = now
			d.mu.Unlock()
		}
	}); err != nil {
		return nil, err
	}
	return d, nil
}
