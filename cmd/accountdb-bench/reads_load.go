package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"
)

// readsStep is one load level of figure 12: what was asked, what came
// back, and the CPU each side spent per request.
type readsStep struct {
	Label    string  // "open 1000/s" or "closed 32 conns"
	Target   float64 // requests/s asked (open loop); 0 for a closed loop
	Rate     float64 // requests/s answered
	Requests int
	Errors   int // answers other than 200, and transport errors
	FirstErr string
	P50, P99 time.Duration
	Max      time.Duration
	// LateP99 (open loop): how late requests left, from when they were
	// due to when a worker sent them: the generator's own delay, or all
	// workers busy with a server that fell behind.
	LateP99 time.Duration
	// CPU per request: the server process, its PostgreSQL backends, and
	// this process (the load generator).
	ServerCPU, PGCPU, ClientCPU time.Duration
	RSSKB                       uint64 // the server's VmRSS after the step
	Load                        string // load average after the step
}

// newRequest makes the next request of a route; rng is the caller's.
type newRequest func(rng *rand.Rand) *http.Request

// readsClient keeps up to conns connections to the server.
func readsClient(conns int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true,
		IdleConnTimeout: time.Minute}}
}

// do sends one request and reads the whole answer; it returns an error
// description for anything but a 200.
func do(client *http.Client, req *http.Request) string {
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Sprintf("%d %s", resp.StatusCode, b)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err.Error()
	}
	return ""
}

// latencies collects what the workers measured.
type latencies struct {
	mu       sync.Mutex
	ds       []time.Duration
	late     []time.Duration // open loop: due → sent
	errors   int
	firstErr string
}

func (l *latencies) add(d time.Duration, errText string) { l.addLate(d, -1, errText) }

// addLate is add with how late the request left (negative: not known).
func (l *latencies) addLate(d, late time.Duration, errText string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ds = append(l.ds, d)
	if late >= 0 {
		l.late = append(l.late, late)
	}
	if errText != "" {
		l.errors++
		if l.firstErr == "" {
			l.firstErr = errText
		}
	}
}

// openLoop sends rate requests per second for d, on schedule whether or
// not earlier ones have been answered, through up to workers connections.
// Latency runs from when a request was due, not when a worker got to it,
// so a server that falls behind shows it (no coordinated omission).
//
// Request k is due at start + k/rate and is handed to a worker at that
// instant: the generator sleeps until it, not in fixed small ticks. (It
// used to release request k only once k+1 periods had passed, so every
// latency included one whole inter-arrival time: p50 62 ms at 17/s, 38 ms
// at 29/s, from a server answering in 3 ms.) How late each request left is
// kept apart (Late), so the generator's own delay is never taken for the
// server's.
func openLoop(ctx context.Context, srv *readsServer, cpu *cpuMeter, rate float64, d time.Duration, workers int, mk newRequest) readsStep {
	client := readsClient(workers)
	defer client.CloseIdleConnections()
	due := make(chan time.Time, int(rate*d.Seconds())+1)
	lat := &latencies{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for at := range due {
				req := mk(rng).WithContext(ctx)
				sent := time.Now()
				e := do(client, req)
				lat.addLate(time.Since(at), sent.Sub(at), e)
			}
		}()
	}
	before := cpu.sample()
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := 0; ctx.Err() == nil; k++ {
		offset := time.Duration(float64(k) / rate * float64(time.Second))
		if offset >= d {
			break
		}
		at := start.Add(offset)
		if wait := time.Until(at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
			case <-timer.C:
			}
		}
		due <- at
	}
	close(due)
	wg.Wait()
	step := finishStep(lat, time.Since(start), cpu.since(before), srv)
	step.Label, step.Target = fmt.Sprintf("open %.0f/s", rate), rate
	_, step.LateP99, _ = percentiles(lat.late)
	return step
}

// closedLoop keeps conns requests outstanding for d: the most the server
// answers, at whatever latency that takes.
func closedLoop(ctx context.Context, srv *readsServer, cpu *cpuMeter, conns int, d time.Duration, mk newRequest) readsStep {
	client := readsClient(conns)
	defer client.CloseIdleConnections()
	lat := &latencies{}
	before := cpu.sample()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for ctx.Err() == nil && time.Since(start) < d {
				t := time.Now()
				e := do(client, mk(rng).WithContext(ctx))
				lat.add(time.Since(t), e)
			}
		}()
	}
	wg.Wait()
	step := finishStep(lat, time.Since(start), cpu.since(before), srv)
	step.Label = fmt.Sprintf("closed, %d conns", conns)
	return step
}

func finishStep(lat *latencies, elapsed time.Duration, used cpuUse, srv *readsServer) readsStep {
	s := readsStep{Requests: len(lat.ds), Errors: lat.errors, FirstErr: lat.firstErr, Load: loadAverage(), RSSKB: srv.procStatus("VmRSS")}
	s.Rate = float64(s.Requests) / elapsed.Seconds()
	s.P50, s.P99, s.Max = percentiles(lat.ds)
	if s.Requests > 0 {
		n := time.Duration(s.Requests)
		s.ServerCPU, s.PGCPU, s.ClientCPU = used.server/n, used.pg/n, used.client/n
	}
	return s
}

// cpuMeter reads the CPU time of the server process, of its PostgreSQL
// backends (by application_name, pids from pg_stat_activity) and of this
// process.
type cpuMeter struct {
	srv    *readsServer
	pgPIDs func() []int
}

type cpuUse struct{ server, pg, client time.Duration }

type cpuSample struct {
	server, client time.Duration
	pg             map[int]time.Duration
}

func (m *cpuMeter) sample() cpuSample {
	s := cpuSample{server: m.srv.cpuTime(), client: procCPUTime(os.Getpid()), pg: map[int]time.Duration{}}
	for _, pid := range m.pgPIDs() {
		s.pg[pid] = procCPUTime(pid)
	}
	return s
}

// since is the CPU used since before; a backend that appeared meanwhile
// counts from zero.
func (m *cpuMeter) since(before cpuSample) cpuUse {
	now := m.sample()
	u := cpuUse{server: now.server - before.server, client: now.client - before.client}
	for pid, t := range now.pg {
		u.pg += t - before.pg[pid]
	}
	return u
}
