package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/domain"
)

// job is one delivered request message, from fetch to ack.
type job struct {
	msg  jetstream.Msg
	seq  uint64 // stream sequence: identifies a redelivery of the same message
	req  request
	done chan struct{} // stops the InProgress heartbeat
}

// dispatcher runs jobs with bounded concurrency, one at a time per VM, in
// the order they were delivered.
type dispatcher struct {
	a       *Agent
	termCtx context.Context // ends when the agent stops or stops leading: start nothing new
	opCtx   context.Context // outlives termCtx by up to ShutdownTimeout, less when fenced
	sem     chan struct{}

	mu   sync.Mutex
	held map[uint64]bool // stream sequences fetched and not finished
	// watchers ask guests for their addresses after a start (guestaddrs.go).
	watchers sync.WaitGroup
	queues   map[uuid.UUID][]*job // per VM; a key means a runner is active
	room     chan struct{}        // signalled when a job finishes
	wg       sync.WaitGroup
}

// consume fetches requests until ctx ends (the agent stops, or stops
// leading), then shuts the dispatcher down: running operations may finish
// for up to ShutdownTimeout, or until abandon closes (a fenced leader,
// before its lease can expire), whichever comes first.
//
// Each pull request expires after fetchWait. A leader cut off from NATS
// cannot withdraw the pull request it has outstanding; the server would
// hand it messages (redeliveries included) that vanish, and, if it were
// still open when the next leader pulls, would split one VM's requests
// between the two and reorder them. A fetchWait of at most a quarter of the
// lease TTL has it expire before the lease does.
func (a *Agent) consume(ctx context.Context, cons jetstream.Consumer, fetchWait time.Duration, abandon <-chan struct{}) {
	opCtx, cancelOps := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelOps()
	stopAbandon := context.AfterFunc(ctx, func() {
		select {
		case <-abandon:
			cancelOps()
		case <-opCtx.Done():
		}
	})
	defer stopAbandon()
	d := &dispatcher{
		a: a, termCtx: ctx, opCtx: opCtx, sem: make(chan struct{}, a.cfg.Concurrency),
		held: map[uint64]bool{}, queues: map[uuid.UUID][]*job{}, room: make(chan struct{}, 1),
	}
	maxHeld := a.cfg.Concurrency * 4
	for ctx.Err() == nil {
		free := d.waitRoom(ctx, maxHeld)
		if free == 0 {
			break
		}
		fctx, cancel := context.WithTimeout(ctx, fetchWait)
		batch, err := cons.Fetch(free, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				break
			}
			a.log.Warn("fetch VM requests", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		for msg := range batch.Messages() {
			d.dispatch(msg)
		}
		cancel()
		if err := batch.Error(); err != nil && ctx.Err() == nil && !isFetchTimeout(err) {
			a.log.Warn("fetch VM requests", "err", err)
			sleep(ctx, time.Second)
		}
	}
	d.shutdown(a.cfg.ShutdownTimeout, cancelOps)
}

func isFetchTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoHeartbeat)
}

// waitRoom blocks until fewer than maxHeld jobs are held and returns how
// many more may be fetched; 0 when ctx ended.
func (d *dispatcher) waitRoom(ctx context.Context, maxHeld int) int {
	for {
		d.mu.Lock()
		n := len(d.held)
		d.mu.Unlock()
		if n < maxHeld {
			return maxHeld - n
		}
		select {
		case <-d.room:
		case <-ctx.Done():
			return 0
		}
	}
}

// dispatch decodes a message and queues it behind its VM's other jobs.
func (d *dispatcher) dispatch(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		d.a.log.Error("VM request without metadata", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	if md.Stream != bus.StreamName || md.Consumer != ConsumerName {
		// Only the core may publish onto ACCOUNTDB_EVENTS, and only the
		// server delivers into the agent's inbox (natsauth): a message from
		// anywhere else is not a request, whatever it says.
		d.a.log.Error("VM request not from the event stream, refused", "subject", msg.Subject(), "stream", md.Stream, "consumer", md.Consumer)
		_ = msg.Term()
		return
	}
	req, err := decodeRequest(msg.Data())
	if err != nil {
		// A message that cannot be decoded never will be: end its
		// redelivery, and say so loudly.
		d.a.log.Error("VM request: undecodable, terminated", "subject", msg.Subject(), "stream_seq", md.Sequence.Stream, "err", err)
		_ = msg.TermWithReason(err.Error())
		return
	}
	if d.termCtx.Err() != nil {
		_ = msg.Nak() // fetched as the agent stopped (leading): not started
		return
	}
	req.Delivery = md.NumDelivered
	j := &job{msg: msg, seq: md.Sequence.Stream, req: req, done: make(chan struct{})}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.held[j.seq] {
		return // a redelivery of a message still being worked on
	}
	d.held[j.seq] = true
	go d.heartbeat(j)
	q, active := d.queues[req.VMID]
	d.queues[req.VMID] = append(q, j)
	if !active {
		d.wg.Add(1)
		go d.runVM(req.VMID)
	}
}

// heartbeat keeps a held message from being redelivered while it waits or
// runs.
func (d *dispatcher) heartbeat(j *job) {
	t := time.NewTicker(max(d.a.cfg.AckWait/3, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-j.done:
			return
		case <-t.C:
			_ = j.msg.InProgress()
		}
	}
}

// runVM works through one VM's queue.
func (d *dispatcher) runVM(vm uuid.UUID) {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		q := d.queues[vm]
		if len(q) == 0 || d.termCtx.Err() != nil {
			delete(d.queues, vm)
			d.mu.Unlock()
			for _, j := range q {
				d.release(j) // never started: redeliver
			}
			return
		}
		j := q[0]
		d.queues[vm] = q[1:]
		d.mu.Unlock()

		select {
		case d.sem <- struct{}{}:
		case <-d.opCtx.Done():
			d.release(j)
			continue
		}
		if d.termCtx.Err() != nil {
			<-d.sem
			d.release(j)
			continue
		}
		d.run(j)
		<-d.sem
	}
}

// run executes one job, publishes its result and acknowledges it.
func (d *dispatcher) run(j *job) {
	a := d.a
	log := a.log.With("event_id", j.req.EventID, "vm_id", j.req.VMID, "action", j.req.Action, "correlation_id", j.req.CorrelationID)
	// Backups and restores may run for hours (domain.ActionDeadline).
	timeout := domain.ActionDeadline(j.req.Action, a.cfg.OperationTimeout)
	ctx, cancel := context.WithTimeout(d.opCtx, timeout)
	defer cancel()
	// Until its result is published (or the request handed back), a
	// listing may catch the guest midway (guestchanges.go).
	a.changes.begin(j.req.VMID)
	defer a.changes.end(j.req.VMID)
	start := time.Now()
	res, err := a.execute(ctx, j.req)
	if d.opCtx.Err() != nil {
		a.metrics.observe(j.req.Action, "abandoned", time.Since(start))
		log.Warn("VM request abandoned at shutdown; it will be redelivered", "err", err)
		d.release(j)
		return
	}
	if err != nil { // the operation's own deadline
		res.Succeeded, res.Error = false, fmt.Sprintf("the operation did not finish within %s", timeout)
	}
	res.FinishedAt = time.Now().UTC()
	outcome := "succeeded"
	if !res.Succeeded {
		outcome = "failed"
	}
	a.metrics.observe(j.req.Action, outcome, time.Since(start))
	if err := a.publishResult(d.opCtx, res); err != nil {
		log.Error("result not published; the request will be redelivered", "err", err)
		d.release(j)
		return
	}
	if err := j.msg.DoubleAck(d.opCtx); err != nil {
		// The result is stored; a redelivery finds the work done and
		// publishes the same result, which JetStream or the core drops.
		log.Warn("ack VM request", "err", err)
	}
	d.watchGuest(j.req, res)
	if res.Succeeded {
		log.Info("VM request done", "node", res.Node, "pve_vmid", res.PVEVMID, "task", res.TaskID, "duration", time.Since(start))
	} else {
		log.Warn("VM request failed", "error", res.Error, "task", res.TaskID)
	}
	d.finish(j)
}

// release gives a job back to JetStream unacknowledged-as-done (a Nak, so
// another agent gets it at once) and forgets it.
func (d *dispatcher) release(j *job) {
	_ = j.msg.Nak()
	d.finish(j)
}

func (d *dispatcher) finish(j *job) {
	close(j.done)
	d.mu.Lock()
	delete(d.held, j.seq)
	d.mu.Unlock()
	select {
	case d.room <- struct{}{}:
	default:
	}
}

// shutdown, once termCtx ended (so runners start no more jobs), gives
// running ones up to timeout (or until consume's abandon cancels them), then
// cancels them and waits for every runner to return.
func (d *dispatcher) shutdown(timeout time.Duration, cancelOps context.CancelFunc) {
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		cancelOps()
		<-done
	}
	d.watchers.Wait() // they follow termCtx, which has ended
}

// resultPublishTimeout bounds one attempt to publish a result (or an
// observation, which results wait for).
const resultPublishTimeout = 10 * time.Second

// publishResult stores a result in ACCOUNTDB_AGENT, retrying until
// JetStream acknowledges it or ctx ends.
func (a *Agent) publishResult(ctx context.Context, r protocol.Result) error {
	msg, err := protocol.NewResultMsg(r)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		err := a.changes.publishResult(func() error {
			pctx, cancel := context.WithTimeout(ctx, resultPublishTimeout)
			defer cancel()
			_, err := a.cfg.JS.PublishMsg(pctx, msg)
			return err
		})
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("publish result: %w", err)
		}
		a.log.Warn("publish result, retrying", "event_id", r.RequestEventID, "attempt", attempt, "err", err)
		if !sleep(ctx, backoff(attempt, 200*time.Millisecond, 5*time.Second)) {
			return fmt.Errorf("publish result: %w", err)
		}
	}
}

// requestEventTypes are the VM events the agent acts on.
var requestEventTypes = domain.RequestEventTypes

// decodeRequest reads a relayed VM request.
func decodeRequest(data []byte) (request, error) {
	ev, err := bus.DecodeMessage(data)
	if err != nil {
		return request{}, err
	}
	if ev.Stream.Type != domain.StreamVM {
		return request{}, fmt.Errorf("event %s is on a %q stream, not a VM's", ev.EventID, ev.Stream.Type)
	}
	body, err := domain.DecodeEvent(ev.Type, ev.Data)
	if err != nil {
		return request{}, err
	}
	req := request{EventID: ev.EventID, CorrelationID: ev.CorrelationID, TenantID: ev.TenantID, VMID: ev.Stream.ID, Body: body}
	action, ok := domain.RequestedAction(body)
	if !ok {
		return request{}, fmt.Errorf("event %s: %s is not a VM request", ev.EventID, ev.Type)
	}
	req.Action = action
	if req.TenantID == uuid.Nil || req.VMID == uuid.Nil || req.Action == "" {
		return request{}, fmt.Errorf("event %s: no tenant, VM or action", ev.EventID)
	}
	return req, nil
}
