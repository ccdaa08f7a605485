package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/bus"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Where create → running spends its time (issue 16): each VM of a
// concurrent create run is followed through the system by the moments the
// bench can see without slowing it down, read after the run: the client's
// own (POST sent, 202 received, first seen running) and JetStream's store
// times of the messages between them (the relay publishing the request,
// the agent publishing its result, the relay publishing the outcome the
// ingest appended). The agent's own histogram says how long its operations
// took and how busy its worker slots were.

// vmTiming is what the client saw of one VM.
type vmTiming struct {
	id                   string
	sent, accepted, seen time.Time
}

// stageTimes are one VM's moments on the bus.
type stageTimes struct {
	requested, result, outcome time.Time
	// outcomeRecorded is the outcome's recorded_at: its transaction's
	// start, in PostgreSQL's clock (the same machine's).
	outcomeRecorded time.Time
}

// stageReport is the breakdown of one create run.
type stageReport struct {
	VMs      int
	Missing  int // VMs whose three messages were not all found
	Stages   []stageStat
	AgentOps int
	// AgentMean is the agent's mean create (its task histogram), AgentBusy
	// the share of its worker slots those creates occupied over the run.
	AgentMean time.Duration
	AgentBusy float64
	// First50Post and RestPost are the POST's p99 for the first creates
	// sent (the burst: every worker's first) and the others.
	First50Post, RestPost time.Duration
}

type stageStat struct {
	Name          string
	P50, P99, Max time.Duration
}

// createStages reads the bus after a run and breaks each VM's create →
// running into its stages.
func (st *vmStack) createStages(ctx context.Context, lv createLevel, concurrency int, agentBefore agentOps) (stageReport, error) {
	timings, inFlight, elapsed := lv.timings, lv.InFlight, lv.Elapsed
	rep := stageReport{VMs: len(timings)}
	nc, err := nats.Connect(st.natsURL, nats.Name("accountdb-bench-stages"))
	if err != nil {
		return rep, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return rep, err
	}
	times := map[uuid.UUID]*stageTimes{}
	at := func(id uuid.UUID) *stageTimes {
		t, ok := times[id]
		if !ok {
			t = &stageTimes{}
			times[id] = t
		}
		return t
	}
	if err := readStream(ctx, js, bus.StreamName, "accountdb.events.*.vm.>", func(md *jetstream.MsgMetadata, data []byte) {
		ev, err := bus.DecodeMessage(data)
		if err != nil {
			return
		}
		switch ev.Type {
		case "vm_create_requested":
			at(ev.Stream.ID).requested = md.Timestamp
		case "vm_provisioned", "vm_action_failed":
			if t := at(ev.Stream.ID); t.outcome.IsZero() {
				t.outcome, t.outcomeRecorded = md.Timestamp, ev.RecordedAt
			}
		}
	}); err != nil {
		return rep, err
	}
	if err := readStream(ctx, js, protocol.StreamName, protocol.ResultSubjectPrefix+">", func(md *jetstream.MsgMetadata, data []byte) {
		r, err := protocol.DecodeResult(data)
		if err != nil || r.Action != "create" {
			return
		}
		if t := at(r.VMID); t.result.IsZero() {
			t.result = md.Timestamp
		}
	}); err != nil {
		return rep, err
	}
	var post, relay, agentStage, ingest, outRelay, visible, firstPost, restPost []time.Duration
	for i, v := range timings {
		id, err := uuid.Parse(v.id)
		t := times[id]
		if err != nil || t == nil || t.requested.IsZero() || t.result.IsZero() || t.outcome.IsZero() {
			rep.Missing++
			continue
		}
		post = append(post, v.accepted.Sub(v.sent))
		if i < inFlight {
			firstPost = append(firstPost, v.accepted.Sub(v.sent))
		} else {
			restPost = append(restPost, v.accepted.Sub(v.sent))
		}
		relay = append(relay, t.requested.Sub(v.sent))
		agentStage = append(agentStage, t.result.Sub(t.requested))
		ingest = append(ingest, t.outcomeRecorded.Sub(t.result))
		outRelay = append(outRelay, t.outcome.Sub(t.outcomeRecorded))
		visible = append(visible, v.seen.Sub(t.outcome))
	}
	for _, s := range []struct {
		name string
		ds   []time.Duration
	}{
		{"POST sent → 202", post},
		{"POST sent → request on the bus (append, relay)", relay},
		{"request on the bus → agent's result on the bus (queue, Proxmox)", agentStage},
		{"result → outcome's transaction begins (ingest's queue, VM load)", ingest},
		{"→ outcome on the bus (append, commit, relay)", outRelay},
		{"outcome on the bus → client sees running (projector, the watch)", visible},
	} {
		p50, p99, mx := percentiles(s.ds)
		rep.Stages = append(rep.Stages, stageStat{Name: s.name, P50: p50, P99: p99, Max: mx})
	}
	_, rep.First50Post, _ = percentiles(firstPost)
	_, rep.RestPost, _ = percentiles(restPost)
	after, err := st.agentCreates()
	if err != nil {
		return rep, err
	}
	if n, sum := after.n-agentBefore.n, after.sum-agentBefore.sum; n > 0 {
		rep.AgentOps = n
		rep.AgentMean = time.Duration(sum / float64(n) * float64(time.Second))
		rep.AgentBusy = sum / (float64(concurrency) * elapsed.Seconds())
	}
	return rep, nil
}

// agentOps is the agent's creates so far: how many, seconds in all.
type agentOps struct {
	n   int
	sum float64
}

// agentCreates reads the agent's task histogram for creates.
func (st *vmStack) agentCreates() (agentOps, error) {
	if st.metrics == nil {
		return agentOps{}, nil
	}
	n, sum, err := histogramOf(st.metrics, "accountdb_agent_task_seconds", "create")
	return agentOps{n, sum}, err
}

// readStream hands every message of stream on subject, from the first to
// the last there now, to f.
func readStream(ctx context.Context, js jetstream.JetStream, stream, subject string, f func(*jetstream.MsgMetadata, []byte)) error {
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return fmt.Errorf("stages: %s: %w", stream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("stages: %s: %w", stream, err)
	}
	left := info.NumPending
	for left > 0 {
		batch, err := cons.Fetch(int(min(left, 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("stages: %s: %w", stream, err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			md, err := msg.Metadata()
			if err != nil {
				return err
			}
			f(md, msg.Data())
			left = md.NumPending
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("stages: %s: %w", stream, err)
		}
		if got == 0 {
			return fmt.Errorf("stages: %s: %d messages pending, none delivered", stream, left)
		}
	}
	return nil
}

// histogramOf is the sample count and sum of histogram name's series whose
// first label is label.
func histogramOf(reg *prometheus.Registry, name, label string) (int, float64, error) {
	families, err := reg.Gather()
	if err != nil {
		return 0, 0, err
	}
	var (
		n   int
		sum float64
	)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label {
				n += int(m.GetHistogram().GetSampleCount())
				sum += m.GetHistogram().GetSampleSum()
			}
		}
	}
	return n, sum, nil
}

func (r stageReport) print(out io.Writer, indent string) {
	fmt.Fprintf(out, "%swhere the time went, per VM (JetStream's store times; %d of %d VMs followed):\n", indent, r.VMs-r.Missing, r.VMs)
	w := 0
	for _, s := range r.Stages {
		w = max(w, len([]rune(s.Name)))
	}
	for _, s := range r.Stages {
		fmt.Fprintf(out, "%s  %s%s  p50 %9s  p99 %9s  max %9s\n", indent, s.Name, strings.Repeat(" ", w-len([]rune(s.Name))), ms(s.P50), ms(s.P99), ms(s.Max))
	}
	fmt.Fprintf(out, "%s  POST p99: the first burst %s, the rest %s\n", indent, ms(r.First50Post), ms(r.RestPost))
	if r.AgentOps > 0 {
		fmt.Fprintf(out, "%s  agent: %d creates, mean %s on Proxmox; its slots %.0f%% busy\n", indent, r.AgentOps, ms(r.AgentMean), 100*r.AgentBusy)
	}
}

// backendsCPU is the CPU time of each backend of the bench database, by pid.
type backendsCPU map[int]time.Duration

// postgresCPU samples the CPU time of the bench database's backends.
func (st *vmStack) postgresCPU(ctx context.Context) backendsCPU {
	out := backendsCPU{}
	rows, err := st.cpPool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			out[pid] = procCPUTime(pid)
		}
	}
	return out
}

// since is the CPU the backends of later used after b; a backend that
// appeared meanwhile counts from zero, one that ended is lost.
func (b backendsCPU) since(later backendsCPU) time.Duration {
	var d time.Duration
	for pid, t := range later {
		d += t - b[pid]
	}
	return d
}
