package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/eventstore"
	"github.com/accountdb/accountdb/internal/app"
	"github.com/google/uuid"
)

// Figure 7 is the audit log over HTTP: the NDJSON export of one tenant's
// events (GET /v1/audit, Accept: application/x-ndjson) and time travel
// (GET /v1/vms/{id}?as_of=) on a long stream. The API router runs in this
// process on a loopback port with the pieces those routes need (command
// handler for sign-in, event store, token verifier); the client reads over
// real HTTP.

// The bars of figure 7.
const (
	barExportRate = 50_000 // events/s
	barAsOfP99    = 50 * time.Millisecond
)

// auditConfig is figure 7's knobs.
type auditConfig struct {
	Skip       bool
	Events     int
	AsOfEvents int
	AsOfCalls  int
}

func auditFlags(fs *flag.FlagSet, c *auditConfig) {
	fs.BoolVar(&c.Skip, "skip-audit", false, "skip the audit benchmark (figure 7)")
	fs.IntVar(&c.Events, "audit-events", 1_000_000, "events of the tenant the NDJSON export reads")
	fs.IntVar(&c.AsOfEvents, "asof-events", 10_000, "events in the VM stream that as_of replays")
	fs.IntVar(&c.AsOfCalls, "asof-calls", 50, "warm as_of calls measured at each instant, after the cold one")
}

func (c auditConfig) validate() error {
	if c.Events < 0 || c.AsOfEvents < 2 || c.AsOfCalls < 1 {
		return errors.New("-audit-events must not be negative, -asof-events at least 2, -asof-calls at least 1")
	}
	return nil
}

type auditResult struct {
	Seeded     int
	Events     int
	SeedTime   time.Duration
	Elapsed    time.Duration // first byte asked → last line read
	Bytes      int64
	HeapBefore uint64 // HeapInuse after a GC, before the export
	HeapPeak   uint64 // highest HeapInuse sampled during it
	RSSBefore  uint64 // VmRSS before (kB)
	RSSPeak    uint64 // VmHWM after, the peak having been reset before (kB); 0 if unavailable
	AsOfEvents int
	AsOfCalls  int
	AsOfNow    asOfTimes // at the present: every event, version AsOfEvents
	AsOfMid    asOfTimes // halfway through the stream
}

// asOfTimes are one instant's as_of latencies: the first call, with no
// snapshot of the stream (it replays every event and saves the snapshots it
// passes), the same again a few times (snapshots deleted before each), then
// the calls after it that start from a snapshot.
type asOfTimes struct {
	Version          int64 // the version the answer has
	FromSnapshot     int64 // the snapshot warm calls start from
	Cold             time.Duration
	ColdAgain        time.Duration // median of asOfColdRepeats
	WarmP50, WarmP99 time.Duration
}

func (r auditResult) Rate() float64 { return float64(r.Events) / r.Elapsed.Seconds() }

// auditServer is the API on a loopback port and a signed-in tenant admin.
type auditServer struct {
	url, token string
	tenant     uuid.UUID
	commands   *commands.Handler
	close      func()
}

func (b *bench) startAuditServer(ctx context.Context) (*auditServer, error) {
	keys, err := newKeySet()
	if err != nil {
		return nil, err
	}
	h := app.NewCommandHandler(b.db.store, keys)
	operator := platformActor()
	t, err := h.CreateTenant(ctx, operator, commands.Options{}, "audit-bench",
		domain.Quota{MaxVMs: 10, MaxCores: 64, MaxMemoryMB: 1 << 20, MaxDiskGB: 10000})
	if err != nil {
		return nil, fmt.Errorf("audit bench tenant: %w", err)
	}
	email, password := "auditor-"+randomHex(4)+"@bench.example", "bench password "+randomHex(8)
	if _, err := h.CreateUser(ctx, operator, commands.Options{}, commands.NewUser{TenantID: t.ID, Email: email,
		DisplayName: "Bench auditor", Password: password, Roles: []string{auth.RoleTenantAdmin}}); err != nil {
		return nil, fmt.Errorf("audit bench user: %w", err)
	}
	tok, err := h.Login(ctx, eventlog.Metadata{ClientIP: "127.0.0.1"}, email, password)
	if err != nil {
		return nil, fmt.Errorf("audit bench login: %w", err)
	}
	unlimited := api.RateLimit{N: 1 << 30, Window: time.Minute}
	handler := api.NewHandler(api.Deps{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		V1: &api.V1{Commands: h, Pool: b.db.store.Pool(), Store: b.db.store, Verifier: &auth.Verifier{Keys: keys},
			PublicRate: unlimited, UserRate: unlimited, TenantRate: unlimited}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &auditServer{url: "http://" + ln.Addr().String(), token: tok.AccessToken, tenant: t.ID, commands: h,
		close: func() { _ = srv.Close() }}, nil
}

// auditSeedWriters append the export corpus in parallel, one stream each.
const auditSeedWriters = 8

// seedTenant appends n events to tenant in appends of MaxEventsPerAppend,
// each with the metadata a command through the API records.
func (b *bench) seedTenant(ctx context.Context, tenant uuid.UUID, n int) (time.Duration, error) {
	return b.seedEvents(ctx, fmt.Sprintf("seeding %d events for the audit export", n), tenant, n, auditSeedWriters,
		func(a *eventstore.Append) {
			a.CorrelationID = uuid.New()
			a.Metadata = eventlog.Metadata{RequestID: "bench-" + randomHex(6), ClientIP: "192.0.2.10", UserAgent: "accountdb-bench"}
		})
}

// export reads the NDJSON export of the tenant, counting lines, while
// sampling this process's heap.
func (s *auditServer) export(ctx context.Context, res *auditResult) error {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapBefore = ms.HeapInuse
	res.RSSBefore = procKB("VmRSS")
	resetPeakRSS := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil

	var lines atomic.Int64
	stop := startProgress("NDJSON export", 0, func() string { return fmt.Sprintf("%d events", lines.Load()) })
	defer stop()
	heapPeak := sampleHeapPeak()
	defer heapPeak()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/v1/audit", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Accept", "application/x-ndjson")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("export: %d %s", resp.StatusCode, body)
	}
	cr := &countingReader{r: resp.Body}
	sc := bufio.NewScanner(cr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 || sc.Bytes()[0] != '{' {
			return fmt.Errorf("export: line %d is not an event: %.80q", lines.Load()+1, sc.Bytes())
		}
		lines.Add(1)
	}
	res.Elapsed = time.Since(start)
	peak := heapPeak()
	if err := sc.Err(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	res.Events, res.Bytes, res.HeapPeak = int(lines.Load()), cr.n, peak
	if resetPeakRSS {
		res.RSSPeak = procKB("VmHWM")
	}
	return nil
}

// sampleHeapPeak samples this process's heap in use every 20ms until the
// returned function is first called; it returns the highest sample.
func sampleHeapPeak() func() uint64 {
	var peak uint64
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return sync.OnceValue(func() uint64 {
		close(done)
		<-stopped
		return peak
	})
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// procKB reads a "Name:   123 kB" line of /proc/self/status; 0 if absent.
func procKB(name string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSuffix(procField("/proc/self/status", name), " kB"), 10, 64)
	return n
}

// seedLongVM appends a VM stream of n events (a create, then reboots) and
// returns its id and the instant halfway through. The first append is one
// short of a snapshot interval, so the halfway instant falls SnapshotEvery-1
// events past a snapshot (with the defaults, version 5,499): the most a warm
// as_of replays. The present falls on one (10,000), the least.
func (b *bench) seedLongVM(ctx context.Context, tenant uuid.UUID, n int) (uuid.UUID, time.Time, error) {
	id := uuid.New()
	stream := eventlog.StreamID{Type: domain.StreamVM, ID: id}
	cluster := uuid.New()
	events := []domain.Event{
		&domain.VMCreateRequested{Name: "long-lived", Kind: domain.KindQEMU, Spec: domain.VMSpec{Cores: 2, MemoryMB: 2048, DiskGB: 20},
			Template: "debian-12", ClusterID: cluster},
		&domain.VMProvisioned{ClusterID: cluster, Node: "pve1", VMID: 4242, TaskID: "UPID:pve1:0001:create"},
	}
	for len(events) < n {
		events = append(events, &domain.VMActionRequested{Action: domain.ActionReboot},
			&domain.VMActionSucceeded{Action: domain.ActionReboot, TaskID: "UPID:pve1:0002:reboot"})
	}
	events = events[:n]
	var mid time.Time
	for first := true; len(events) > 0; first = false {
		k := min(len(events), eventstore.MaxEventsPerAppend)
		if first && n > commands.SnapshotEvery {
			k = commands.SnapshotEvery - 1
		}
		a := eventstore.Append{Stream: stream, TenantID: tenant, Expected: eventstore.Any(), ActorID: b.actor}
		for _, e := range events[:k] {
			a.Events = append(a.Events, eventstore.NewEvent{Type: e.EventType(), Data: e})
		}
		if _, err := b.db.store.Append(ctx, a); err != nil {
			return uuid.Nil, time.Time{}, fmt.Errorf("seed VM: %w", err)
		}
		events = events[k:]
		if mid.IsZero() && len(events) <= n/2 {
			time.Sleep(time.Millisecond)
			mid = time.Now()
			time.Sleep(time.Millisecond)
		}
	}
	return id, mid, nil
}

// asOfWarmups are unmeasured calls before the cold one, at an instant before
// the stream began (404, nothing replayed, no snapshot): they open the
// connection and warm the server's caches, so the cold call pays only for
// the replay.
const asOfWarmups = 3

// asOfColdRepeats are cold calls after the first, each after the stream's
// snapshots are deleted: the first cold call is also the first replay the
// process and its connection make (statements prepared, heap grown).
const asOfColdRepeats = 5

// timeAsOf GETs the VM as of at: the first call after the stream's
// snapshots are deleted (cold), asOfColdRepeats more the same way, then
// calls more (warm); every answer's version checks the replay went as far
// as expected.
func (s *auditServer) timeAsOf(ctx context.Context, b *bench, vm uuid.UUID, at time.Time, calls int, wantVersion int64) (asOfTimes, error) {
	res := asOfTimes{Version: wantVersion}
	get := func(at time.Time, want int) (time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/v1/vms/"+vm.String()+"?as_of="+url.QueryEscape(at.Format(time.RFC3339Nano)), nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+s.token)
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if err != nil {
			return 0, err
		}
		var v struct {
			Version int64 `json:"version"`
		}
		if resp.StatusCode != want || want == http.StatusOK && (json.Unmarshal(body, &v) != nil || v.Version != wantVersion) {
			return 0, fmt.Errorf("as_of: %d, version %d (want %d, version %d): %.200s", resp.StatusCode, v.Version, want, wantVersion, bytes.TrimSpace(body))
		}
		return d, nil
	}
	for range asOfWarmups {
		if _, err := get(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), http.StatusNotFound); err != nil {
			return res, err
		}
	}
	stream := "vm-" + vm.String()
	var cold []time.Duration
	for range 1 + asOfColdRepeats {
		if _, err := b.db.admin.Exec(ctx, `DELETE FROM snapshots WHERE stream_id = $1`, stream); err != nil {
			return res, fmt.Errorf("as_of: delete snapshots: %w", err)
		}
		d, err := get(at, http.StatusOK)
		if err != nil {
			return res, err
		}
		cold = append(cold, d)
	}
	res.Cold = cold[0]
	res.ColdAgain, _, _ = percentiles(cold[1:])
	if err := b.db.admin.QueryRow(ctx, `SELECT coalesce(max(stream_version), 0) FROM snapshots WHERE stream_id = $1 AND covered_until <= $2`,
		stream, at).Scan(&res.FromSnapshot); err != nil {
		return res, fmt.Errorf("as_of: snapshots: %w", err)
	}
	lat := make([]time.Duration, 0, calls)
	for range calls {
		d, err := get(at, http.StatusOK)
		if err != nil {
			return res, err
		}
		lat = append(lat, d)
	}
	res.WarmP50, res.WarmP99, _ = percentiles(lat)
	return res, nil
}

func (b *bench) auditPhase(ctx context.Context) error {
	if b.actor == uuid.Nil {
		b.actor = uuid.New()
	}
	s, err := b.startAuditServer(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	res := auditResult{Seeded: b.cfg.Audit.Events, AsOfEvents: b.cfg.Audit.AsOfEvents, AsOfCalls: b.cfg.Audit.AsOfCalls}

	vm, mid, err := b.seedLongVM(ctx, s.tenant, b.cfg.Audit.AsOfEvents)
	if err != nil {
		return err
	}
	if res.SeedTime, err = b.seedTenant(ctx, s.tenant, b.cfg.Audit.Events); err != nil {
		return err
	}
	if _, err := b.db.admin.Exec(ctx, "ANALYZE events"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	want, err := b.tenantEventCount(ctx, s.tenant)
	if err != nil {
		return err
	}
	if err := s.export(ctx, &res); err != nil {
		return err
	}
	if res.Events != want {
		return fmt.Errorf("export: %d events, the tenant has %d", res.Events, want)
	}

	stop := startProgress(fmt.Sprintf("as_of on a stream of %d events, %d calls", b.cfg.Audit.AsOfEvents, b.cfg.Audit.AsOfCalls), 0, func() string { return "" })
	res.AsOfNow, err = s.timeAsOf(ctx, b, vm, time.Now(), b.cfg.Audit.AsOfCalls, int64(b.cfg.Audit.AsOfEvents))
	if err == nil {
		var half int64
		if half, err = b.versionAt(ctx, vm, mid); err == nil {
			res.AsOfMid, err = s.timeAsOf(ctx, b, vm, mid, b.cfg.Audit.AsOfCalls, half)
		}
	}
	stop()
	if err != nil {
		return err
	}
	res.print(os.Stdout)
	return nil
}

func (b *bench) tenantEventCount(ctx context.Context, tenant uuid.UUID) (int, error) {
	var n int
	err := b.db.admin.QueryRow(ctx, `SELECT count(*) FROM events WHERE tenant_id = $1`, tenant).Scan(&n)
	return n, err
}

func (b *bench) versionAt(ctx context.Context, vm uuid.UUID, at time.Time) (int64, error) {
	var v int64
	err := b.db.admin.QueryRow(ctx, `SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = $1 AND recorded_at <= $2`,
		"vm-"+vm.String(), at).Scan(&v)
	if err == nil && v == 0 {
		err = errors.New("as_of: no event before the midpoint")
	}
	return v, err
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func (r auditResult) print(out *os.File) {
	fmt.Fprintln(out, "7. Audit over HTTP: NDJSON export of one tenant (GET /v1/audit, Accept: application/x-ndjson) and as_of")
	fmt.Fprintf(out, "   seeded %d events in %s (%d writers, appends of %d)\n", r.Seeded, r.SeedTime.Round(time.Millisecond),
		auditSeedWriters, eventstore.MaxEventsPerAppend)
	fmt.Fprintf(out, "   export: %d events, %.1f MB in %s = %.0f events/s (%.1f MB/s)\n", r.Events, float64(r.Bytes)/1e6,
		r.Elapsed.Round(time.Millisecond), r.Rate(), float64(r.Bytes)/1e6/r.Elapsed.Seconds())
	fmt.Fprintf(out, "   memory (server and client in this process): heap in use %s before, peak %s during", mib(r.HeapBefore), mib(r.HeapPeak))
	if r.RSSPeak > 0 {
		fmt.Fprintf(out, "; RSS %d MiB before, peak %d MiB during", r.RSSBefore/1024, r.RSSPeak/1024)
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "   as_of on a VM stream of %d events (snapshots every %d), cold = first call with no snapshot, warm = %d calls after it:\n",
		r.AsOfEvents, commands.SnapshotEvery, r.AsOfCalls)
	for _, a := range []struct {
		name string
		t    asOfTimes
	}{{"now", r.AsOfNow}, {"halfway", r.AsOfMid}} {
		fmt.Fprintf(out, "     %-7s (version %d): cold %s, again p50 %s (%d events replayed); warm p50 %s p99 %s (from the snapshot at %d, %d events replayed)\n",
			a.name, a.t.Version, ms(a.t.Cold), ms(a.t.ColdAgain), a.t.Version, ms(a.t.WarmP50), ms(a.t.WarmP99), a.t.FromSnapshot, a.t.Version-a.t.FromSnapshot)
	}
	verdict(out, fmt.Sprintf("NDJSON export ≥ %d events/s", barExportRate), r.Rate() >= barExportRate, fmt.Sprintf("%.0f events/s", r.Rate()))
	warm := max(r.AsOfNow.WarmP99, r.AsOfMid.WarmP99)
	verdict(out, fmt.Sprintf("as_of warm p99 < %s (%d events)", ms(barAsOfP99), r.AsOfEvents), warm < barAsOfP99, ms(warm))
	fmt.Fprintln(out)
}
