package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// The bars the figures are held to (docs/BENCHMARKS.md explains them).
const (
	barPgbenchRatio = 0.70 // ours / pgbench (same SQL) at the highest writer level
	// Issue 16: ours / the plain durable INSERT (the physical baseline), by
	// writer level; 32 writers at least as fast as 8; the tail at 32.
	barPlainRatioOne  = 0.30 // at 1 writer
	barPlainRatioMany = 0.40 // at 8 and 32 writers
	barAppendP99At32  = 20 * time.Millisecond
	barAppendMaxAt32  = 100 * time.Millisecond
	barReadAllRate    = 100_000 // events per second
	barRelayLagP99    = 100 * time.Millisecond
)

type machine struct {
	CPUs       int
	CPUModel   string
	Memory     string
	Postgres   string
	PGSettings string
	Go         string
	LoadBefore string
	// OtherBackends counts active sessions of other databases at the start:
	// they share the CPUs.
	OtherBackends int
}

type appendLevel struct {
	Ours    loadResult
	Pgbench *pgbenchResult // the store's SQL
	Plain   *pgbenchResult // the plain durable INSERT of the same payload
	Waits   waitProfile    // the store's backends while ours ran
}

// plainRatio is ours over the physical baseline; 0 without it.
func (l appendLevel) plainRatio() float64 {
	if l.Plain == nil || l.Plain.TPS == 0 {
		return 0
	}
	return l.Ours.Rate() / l.Plain.TPS
}

func (l appendLevel) ratio() float64 {
	if l.Pgbench == nil || l.Pgbench.TPS == 0 {
		return 0
	}
	return l.Ours.Rate() / l.Pgbench.TPS
}

type report struct {
	Machine  machine
	Database string
	Appends  []appendLevel
	Loads    []loadsLevel // figure 2b (loads.go)
	Read     *readResult
	Relay    *relayResult
	VMs      *vmResult
	// AgentScale is figure 5b (agentscale.go).
	AgentScale *agentScaleResult
	IPAM       *ipamResult
	Replicas   *replicasResult
	Console    *consoleResult
	Rebuild    *rebuildResult
	Elapsed    time.Duration
	LoadEnd    string
}

func describeMachine(ctx context.Context, db *benchDB) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	m.LoadBefore = loadAverage()
	_ = db.admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE state <> 'idle' AND datname IS DISTINCT FROM current_database() AND pid <> pg_backend_pid()`).Scan(&m.OtherBackends)
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		var n float64
		if _, err := fmt.Sscanf(kb, "%f kB", &n); err == nil {
			m.Memory = fmt.Sprintf("%.1f GiB", n/(1<<20))
		}
	}
	var version, syncCommit, sharedBuffers, maxWAL string
	if err := db.admin.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('synchronous_commit'),
		current_setting('shared_buffers'), current_setting('max_wal_size')`).Scan(&version, &syncCommit, &sharedBuffers, &maxWAL); err == nil {
		m.Postgres = "PostgreSQL " + version
		m.PGSettings = fmt.Sprintf("synchronous_commit=%s shared_buffers=%s max_wal_size=%s", syncCommit, sharedBuffers, maxWAL)
	}
	return m
}

// loadAverage is the 1, 5 and 15 minute load average, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// procField reads "key : value" from a /proc file; empty if unavailable.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (r *report) addAppendLevel(l appendLevel) { r.Appends = append(r.Appends, l) }
func (r *report) setRead(res readResult)       { r.Read = &res }
func (r *report) setRelay(res relayResult)     { r.Relay = &res }

func (r *report) printHeader() {
	m := r.Machine
	fmt.Printf("AccountDB benchmarks — %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("machine:  %d CPUs (%s), %s RAM\n", m.CPUs, m.CPUModel, m.Memory)
	fmt.Printf("database: %s (%s), fresh database %s, store connected as accountdb_app\n", m.Postgres, m.PGSettings, r.Database)
	fmt.Printf("go:       %s\n", m.Go)
	fmt.Printf("load:     %s (1/5/15 min) at the start; %d active sessions of other databases in the cluster\n", m.LoadBefore, m.OtherBackends)
	if l, err := strconv.ParseFloat(strings.Fields(m.LoadBefore + " x")[0], 64); err == nil && l > float64(m.CPUs)/2 {
		fmt.Printf("warning:  the machine is busy; these figures measure a shared machine, not AccountDB alone\n")
	}
	fmt.Println()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func (r *report) printSummary() {
	out := os.Stdout
	if len(r.Appends) > 0 {
		fmt.Fprintln(out, "1–2. Append, single-event commands, one stream per writer (Store.Append vs pgbench running the same SQL, and pgbench's plain durable INSERT of the same payload)")
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "writers\tappends\tappends/s\tp50\tp99\tmax\tsame SQL tps\tavg\tours/same\tplain INSERT tps\tavg\tours/plain\t")
		for _, l := range r.Appends {
			o := l.Ours
			pgTPS, pgLat, ratio := "-", "-", "-"
			if l.Pgbench != nil {
				pgTPS = fmt.Sprintf("%.0f", l.Pgbench.TPS)
				pgLat = ms(l.Pgbench.LatencyAvg)
				ratio = fmt.Sprintf("%.0f%%", 100*l.ratio())
			}
			plTPS, plLat, plRatio := "-", "-", "-"
			if l.Plain != nil {
				plTPS = fmt.Sprintf("%.0f", l.Plain.TPS)
				plLat = ms(l.Plain.LatencyAvg)
				plRatio = fmt.Sprintf("%.0f%%", 100*l.plainRatio())
			}
			fmt.Fprintf(tw, "%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
				o.Writers, o.Appends, o.Rate(), ms(o.P50), ms(o.P99), ms(o.Max), pgTPS, pgLat, ratio, plTPS, plLat, plRatio)
		}
		tw.Flush()
		fmt.Fprintln(out, "   where the store's backends were while ours ran (pg_stat_activity sampled every 10 ms; CPU = active, no wait event):")
		for _, l := range r.Appends {
			l.Waits.print(out, fmt.Sprintf("%d writers", l.Ours.Writers))
		}
		fmt.Fprintln(out, "   CPU per append, this process and the store's PostgreSQL backends (steadier than rates on a shared machine):")
		for _, l := range r.Appends {
			fmt.Fprintf(out, "   %d writers: %s + %s\n", l.Ours.Writers, us(l.Ours.ClientCPU), us(l.Ours.PgCPU))
		}
		fmt.Fprintln(out)
		printLoads(out, r.Loads)
	}
	if rd := r.Read; rd != nil {
		fmt.Fprintln(out, "3. ReadAll from Start, commit order, as the relay and rebuilds read")
		fmt.Fprintf(out, "   seeded %d events in %s (%.0f events/s, appends of 1000 events)\n",
			rd.Seeded, rd.SeedTime.Round(time.Millisecond), float64(rd.Seeded)/rd.SeedTime.Seconds())
		fmt.Fprintf(out, "   read %d events in %s: %.0f events/s, %d calls of up to %d, per call p50 %s p99 %s\n",
			rd.Events, rd.Elapsed.Round(time.Millisecond), rd.Rate(), rd.Calls, rd.Batch, ms(rd.P50), ms(rd.P99))
		fmt.Fprintf(out, "   waited %s in %d empty reads on the log's watermark (appends in flight), not counted in the rate\n\n",
			rd.Waited.Round(time.Millisecond), rd.EmptyPolls)
	}
	if rl := r.Relay; rl != nil {
		fmt.Fprintln(out, "4. Relay to JetStream (embedded NATS server, file storage), received by an ordered consumer")
		fmt.Fprintf(out, "   catch-up: %d backlog events published in %s: %.0f events/s\n",
			rl.Backlog, rl.CatchUp.Round(time.Millisecond), rl.CatchUpRate())
		for _, run := range []struct {
			label string
			lag   relayLag
			d     time.Duration
		}{
			{"sustained", rl.Sustained, rl.Duration},
			{fmt.Sprintf("beside a transaction of the database holding an id %s at a time, appending nothing", rl.NeighbourHold), rl.Beside, relayNeighbourDuration},
		} {
			fmt.Fprintf(out, "   %s: %d writers paced to %.0f appends/s for %s: appended %.0f/s, received %.0f events/s\n",
				run.label, rl.Writers, rl.TargetRate, run.d, run.lag.AppendRate(), run.lag.ReceiveRate())
			fmt.Fprintf(out, "     publish lag (append returned → message received): p50 %s  p99 %s  max %s  over %d events; append p99 meanwhile %s\n",
				ms(run.lag.P50), ms(run.lag.P99), ms(run.lag.Max), run.lag.Received, ms(run.lag.AppendP99))
		}
		fmt.Fprintln(out)
	}
	if r.VMs != nil {
		r.VMs.print(out)
	}
	if r.AgentScale != nil {
		r.AgentScale.print(out)
	}
	if r.IPAM != nil {
		r.IPAM.print(out)
	}
	if r.Replicas != nil {
		r.Replicas.print(out)
	}
	if r.Console != nil {
		r.Console.print(out)
	}
	if r.Rebuild != nil {
		r.Rebuild.print(out)
	}
	fmt.Fprintln(out, "Bars")
	if n := len(r.Appends); n > 0 && r.Appends[n-1].Pgbench != nil {
		l := r.Appends[n-1]
		verdict(out, fmt.Sprintf("append at %d writers ≥ %.0f%% of pgbench", l.Ours.Writers, 100*barPgbenchRatio),
			l.ratio() >= barPgbenchRatio, fmt.Sprintf("%.0f%% (%.0f vs %.0f/s)", 100*l.ratio(), l.Ours.Rate(), l.Pgbench.TPS))
	}
	r.printAppendBars(out)
	if rd := r.Read; rd != nil {
		verdict(out, fmt.Sprintf("ReadAll ≥ %d events/s", barReadAllRate), rd.Rate() >= barReadAllRate, fmt.Sprintf("%.0f events/s", rd.Rate()))
	}
	if rl := r.Relay; rl != nil {
		verdict(out, fmt.Sprintf("relay publish lag p99 ≤ %s", barRelayLagP99), rl.Sustained.P99 <= barRelayLagP99, ms(rl.Sustained.P99))
		verdict(out, fmt.Sprintf("relay publish lag p99 ≤ %s beside a transaction holding an id", barRelayLagP99), rl.Beside.P99 <= barRelayLagP99, ms(rl.Beside.P99))
	}
	if r.VMs != nil {
		r.VMs.printBars(out)
	}
	if r.AgentScale != nil {
		r.AgentScale.printBars(out)
	}
	if r.IPAM != nil {
		r.IPAM.printBars(out)
	}
	if r.Console != nil {
		r.Console.printBars(out)
	}
	if r.Rebuild != nil {
		r.Rebuild.printBars(out)
	}
	fmt.Fprintf(out, "\ntotal time %s; load average at the end %s\n", r.Elapsed.Round(time.Second), r.LoadEnd)
}

func verdict(out *os.File, bar string, met bool, got string) {
	mark := "MET   "
	if !met {
		mark = "MISSED"
	}
	fmt.Fprintf(out, "  %s  %-40s  %s\n", mark, bar, got)
}

// printAppendBars holds figures 1–2 to issue 16's bars: a share of the plain
// INSERT at each level, 32 writers no slower than 8, and the tail at 32.
func (r *report) printAppendBars(out *os.File) {
	byWriters := map[int]appendLevel{}
	for _, l := range r.Appends {
		byWriters[l.Ours.Writers] = l
		if l.Plain == nil {
			continue
		}
		bar := barPlainRatioMany
		if l.Ours.Writers == 1 {
			bar = barPlainRatioOne
		}
		verdict(out, fmt.Sprintf("append at %d writers ≥ %.0f%% of plain INSERT", l.Ours.Writers, 100*bar),
			l.plainRatio() >= bar, fmt.Sprintf("%.0f%% (%.0f vs %.0f/s)", 100*l.plainRatio(), l.Ours.Rate(), l.Plain.TPS))
	}
	l8, ok8 := byWriters[8]
	l32, ok32 := byWriters[32]
	if ok8 && ok32 {
		verdict(out, "appends/s at 32 writers ≥ at 8", l32.Ours.Rate() >= l8.Ours.Rate(),
			fmt.Sprintf("%.0f vs %.0f/s", l32.Ours.Rate(), l8.Ours.Rate()))
	}
	if ok32 {
		verdict(out, fmt.Sprintf("append p99 ≤ %s, max ≤ %s at 32", barAppendP99At32, barAppendMaxAt32),
			l32.Ours.P99 <= barAppendP99At32 && l32.Ours.Max <= barAppendMaxAt32,
			fmt.Sprintf("p99 %s, max %s", ms(l32.Ours.P99), ms(l32.Ours.Max)))
	}
}
