package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/projections"
	"github.com/jackc/pgx/v5"
)

// checkpointSeen is one change of the vms projector's checkpoint, with the
// moment the watcher read it.
type checkpointSeen struct {
	at  time.Time
	pos eventlog.Position
}

// watchCheckpoint reads the vms projector's checkpoint every interval and
// records each change until finish is called (again, it returns the same).
func (st *vmStack) watchCheckpoint(ctx context.Context, interval time.Duration) (latest func() eventlog.Position,
	finish func() ([]checkpointSeen, int, error)) {
	var (
		mu    sync.Mutex
		seen  []checkpointSeen
		polls int
		werr  error
	)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	name := projections.VMs{}.Name()
	go func() {
		defer close(done)
		for {
			cp, err := projections.ReadCheckpoint(wctx, st.cpPool, name)
			now := time.Now()
			if err != nil {
				if wctx.Err() == nil {
					mu.Lock()
					werr = err
					mu.Unlock()
				}
				return
			}
			mu.Lock()
			polls++
			if n := len(seen); n == 0 || seen[n-1].pos != cp.Position {
				seen = append(seen, checkpointSeen{at: now, pos: cp.Position})
			}
			mu.Unlock()
			if sleepCtx(wctx, interval) != nil {
				return
			}
		}
	}()
	latest = func() eventlog.Position {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return eventlog.Start
		}
		return seen[len(seen)-1].pos
	}
	stop := sync.OnceFunc(func() { cancel(); <-done })
	finish = func() ([]checkpointSeen, int, error) {
		stop()
		return seen, polls, werr
	}
	return latest, finish
}

// pooledVM is a running VM and the client of its tenant.
type pooledVM struct {
	c  *vmClient
	id string
}

// trackFreeVMs hands out the VMs of pool that can take a reboot: at first
// all; then a VM marked busy(v, version) comes back once the vms table shows
// it at that version or later with no action pending (read every 10ms, as the
// administrator). Commands are sent only to VMs that can take them: a VM
// whose reboot is still pending answers 422, and such refusals would load
// the core without appending anything.
func (st *vmStack) trackFreeVMs(ctx context.Context, pool []pooledVM) (free chan pooledVM, busy func(pooledVM, int64), stop func(), err error) {
	conn, err := pgx.Connect(ctx, st.db.adminURL)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("free VM tracker: %w", err)
	}
	free = make(chan pooledVM, len(pool))
	for _, v := range pool {
		free <- v
	}
	var (
		mu      sync.Mutex
		waiting = map[string]vmWait{}
	)
	busy = func(v pooledVM, version int64) {
		mu.Lock()
		waiting[v.id] = vmWait{v: v, version: version, since: time.Now()}
		mu.Unlock()
	}
	tctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer conn.Close(context.Background())
		for sleepCtx(tctx, 10*time.Millisecond) == nil {
			rows, err := conn.Query(tctx, `SELECT vm_id::text, version, pending FROM vms`)
			if err != nil {
				continue
			}
			now := time.Now()
			mu.Lock()
			for rows.Next() {
				var (
					id      string
					version int64
					pending string
				)
				if rows.Scan(&id, &version, &pending) != nil {
					continue
				}
				// A refused VM waits a moment: the row read may predate
				// the request that keeps it busy.
				if w, ok := waiting[id]; ok && pending == "" && version >= w.version && now.Sub(w.since) >= 20*time.Millisecond {
					delete(waiting, id)
					free <- w.v
				}
			}
			mu.Unlock()
			rows.Close()
		}
	}()
	return free, busy, func() { cancel(); <-done }, nil
}

type vmWait struct {
	v       pooledVM
	version int64
	since   time.Time
}

// issued is one accepted command: its position, when its 202 arrived and
// how long after the request was sent.
type issued struct {
	global   int64
	pos      eventlog.Position
	accepted time.Time
	post     time.Duration
}
