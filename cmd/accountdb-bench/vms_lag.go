package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
)

// projectionLag reboots the VMs of pool at a paced rate for d and measures,
// for each accepted command, how long after its 202 the vms read model has
// applied its position.
func (st *vmStack) projectionLag(ctx context.Context, pool []pooledVM, rateN float64, d, interval time.Duration) (lagResult, error) {
	res := lagResult{TargetRate: rateN, Duration: d, Pool: len(pool), Mode: "reboots, whole system"}
	var conflicts atomic.Int64
	free, busy, stopTracker, err := st.trackFreeVMs(ctx, pool)
	if err != nil {
		return res, err
	}
	defer stopTracker()
	res, err = st.pacedLag(ctx, res, "VM reboots", interval, func(accepted int) string {
		return fmt.Sprintf("%d accepted, %d conflicts", accepted, conflicts.Load())
	}, func(gctx context.Context) (issued, error) {
		// A VM whose previous reboot is still pending answers 422 (invalid
		// state): take another, within the same slot.
		for {
			var v pooledVM
			select {
			case v = <-free:
			case <-gctx.Done():
				return issued{}, gctx.Err()
			}
			var a acceptedAnswer
			t0 := time.Now()
			code, err := v.c.do(gctx, http.MethodPost, "/v1/vms/"+v.id+"/actions/reboot", nil, &a)
			if err != nil {
				return issued{}, err
			}
			now := time.Now()
			if code == http.StatusUnprocessableEntity {
				conflicts.Add(1)
				busy(v, 0)
				continue
			}
			if code != http.StatusAccepted {
				return issued{}, fmt.Errorf("reboot %s: %d", v.id, code)
			}
			// Free again once the read model shows the reboot's result, the
			// event after the request.
			busy(v, a.StreamVersion+1)
			return issued{global: a.Position, accepted: now, post: now.Sub(t0)}, nil
		}
	})
	res.Conflicts = int(conflicts.Load())
	return res, err
}

// pacedLag calls send at res.TargetRate for res.Duration, while the vms
// projector's checkpoint is read every interval, and measures the projection
// lag of the commands accepted. label names the commands in the progress
// line, status tells how many were accepted.
func (st *vmStack) pacedLag(ctx context.Context, res lagResult, label string, interval time.Duration,
	status func(accepted int) string, send func(ctx context.Context) (issued, error)) (lagResult, error) {
	latest, finish := st.watchCheckpoint(ctx, interval)
	defer finish()
	var (
		mu   sync.Mutex
		cmds = make([]issued, 0, int(res.TargetRate*res.Duration.Seconds())+64)
	)
	stop := startProgress(fmt.Sprintf("%s paced to %.0f/s", label, res.TargetRate), res.Duration, func() string {
		mu.Lock()
		defer mu.Unlock()
		return status(len(cmds))
	})
	elapsed, err := pace(ctx, res.TargetRate, res.Duration, func(gctx context.Context) error {
		cmd, err := send(gctx)
		if err != nil {
			return err
		}
		mu.Lock()
		cmds = append(cmds, cmd)
		mu.Unlock()
		return nil
	})
	stop()
	if err != nil {
		return res, err
	}
	res.Elapsed = elapsed
	return st.measureLag(ctx, res, cmds, latest, finish, interval)
}

// measureLag looks up each accepted command's log position and, from the
// checkpoint watcher's readings, how long after its 202 the vms read model
// had applied it.
func (st *vmStack) measureLag(ctx context.Context, res lagResult, cmds []issued,
	latest func() eventlog.Position, finish func() ([]checkpointSeen, int, error), interval time.Duration) (lagResult, error) {
	res.Commands = len(cmds)
	if len(cmds) == 0 {
		return res, errors.New("projection lag: no command accepted")
	}
	// The log orders by (transaction id, position): look up each command's
	// transaction id, which the 202 does not carry.
	globals := make([]int64, len(cmds))
	for i, cmd := range cmds {
		globals[i] = cmd.global
	}
	rows, err := st.db.admin.Query(ctx, `SELECT global_position, transaction_id::text FROM events WHERE global_position = ANY($1)`, globals)
	if err != nil {
		return res, fmt.Errorf("positions: %w", err)
	}
	txids := make(map[int64]uint64, len(cmds))
	for rows.Next() {
		var gp int64
		var txt string
		if err := rows.Scan(&gp, &txt); err != nil {
			rows.Close()
			return res, err
		}
		if txids[gp], err = strconv.ParseUint(txt, 10, 64); err != nil {
			rows.Close()
			return res, err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, err
	}
	last := eventlog.Start
	for i := range cmds {
		txid, ok := txids[cmds[i].global]
		if !ok {
			return res, fmt.Errorf("position %d of an accepted command is not in the log", cmds[i].global)
		}
		cmds[i].pos = eventlog.Position{TransactionID: txid, GlobalPosition: cmds[i].global}
		if last.Less(cmds[i].pos) {
			last = cmds[i].pos
		}
	}
	// Drain: the read model must reach the last command.
	for drainBy := time.Now().Add(drainLimit); latest().Less(last); {
		if time.Now().After(drainBy) {
			return res, fmt.Errorf("projection lag: the vms read model is not at position %d %s after the commands stopped", last.GlobalPosition, drainLimit)
		}
		if err := sleepCtx(ctx, interval); err != nil {
			return res, err
		}
	}
	seen, polls, err := finish()
	if err != nil {
		return res, fmt.Errorf("checkpoint watcher: %w", err)
	}
	res.Polls = polls
	lags, post := make([]time.Duration, len(cmds)), make([]time.Duration, len(cmds))
	for i, cmd := range cmds {
		post[i] = cmd.post
		// The first reading at or past the command's position; readings
		// only move forward.
		k, _ := slices.BinarySearchFunc(seen, cmd.pos, func(s checkpointSeen, p eventlog.Position) int {
			if s.pos.Less(p) {
				return -1
			}
			return 1
		})
		if k == len(seen) {
			return res, fmt.Errorf("projection lag: the checkpoint never reached position %d", cmd.global)
		}
		lags[i] = max(0, seen[k].at.Sub(cmd.accepted))
	}
	res.P50, res.P99, res.Max = percentiles(lags)
	_, res.PostP99, _ = percentiles(post)
	return res, nil
}

// projectionLagCreates issues VM creates at a paced rate for d, with the
// agent stopped: the bar is about the core's pipeline (append → relay →
// JetStream → projector → read model), and in production the agent runs on
// a host of its own, not on the two cores being measured. Each create is
// one command and one event.
func (st *vmStack) projectionLagCreates(ctx context.Context, c *vmClient, rateN float64, d, interval time.Duration) (lagResult, error) {
	res := lagResult{TargetRate: rateN, Duration: d, Mode: "creates, agent stopped"}
	var n atomic.Int64
	return st.pacedLag(ctx, res, "VM creates", interval, func(accepted int) string {
		return fmt.Sprintf("%d accepted", accepted)
	}, func(gctx context.Context) (issued, error) {
		var a acceptedAnswer
		t0 := time.Now()
		code, err := c.do(gctx, http.MethodPost, "/v1/vms", map[string]any{"name": fmt.Sprintf("lag-%d", n.Add(1)),
			"kind": "qemu", "cores": 1, "memory_mb": 256, "disk_gb": 5, "template": "debian-12"}, &a)
		if err != nil {
			return issued{}, err
		}
		now := time.Now()
		if code != http.StatusAccepted {
			return issued{}, fmt.Errorf("create: %d", code)
		}
		return issued{global: a.Position, accepted: now, post: now.Sub(t0)}, nil
	})
}

// pace calls send at rateN per second for d, from enough goroutines that a
// slow answer never holds the pace back, and returns how long it ran. An
// error of send ends the run, unless it is the run's own end.
func pace(ctx context.Context, rateN float64, d time.Duration, send func(ctx context.Context) error) (time.Duration, error) {
	limiter := rate.NewLimiter(rate.Limit(rateN), 1)
	senders := max(16, int(rateN/4))
	start := time.Now()
	deadline := start.Add(d)
	g, gctx := errgroup.WithContext(ctx)
	for range senders {
		g.Go(func() error {
			for time.Now().Before(deadline) {
				if err := limiter.Wait(gctx); err != nil {
					return nil
				}
				if err := send(gctx); err != nil {
					if gctx.Err() != nil {
						return nil
					}
					return err
				}
			}
			return nil
		})
	}
	err := g.Wait()
	return time.Since(start), err
}
