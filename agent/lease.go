package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/accountdb/accountdb/internal/jetstreams"
	"github.com/nats-io/nats.go/jetstream"
)

// LeaseBucket is the JetStream key-value bucket holding the agents' leader
// lease. It is a stable identifier shared by every agent of a deployment.
const LeaseBucket = "ACCOUNTDB_AGENT_LEASE"

// leaseKey is the one key of LeaseBucket: present while a leader holds it.
const leaseKey = "leader"

// LeaseHolder is the value of the lease key: who leads.
type LeaseHolder struct {
	Instance  string    `json:"instance"` // random per agent process
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
}

func newLeaseHolder(instance string) LeaseHolder {
	host, _ := os.Hostname()
	return LeaseHolder{Instance: instance, Host: host, PID: os.Getpid(), StartedAt: time.Now().UTC()}
}

// lease is leader election on LeaseBucket.
//
// The bucket's TTL (the stream's MaxAge) is the lease: every revision of
// the key is removed by the server TTL after it was written, and the bucket
// keeps one revision, so the key disappears TTL after the leader's last
// write. Create (which only succeeds when the key is absent or deleted)
// takes the lease; Update with the last revision renews it; Delete with the
// last revision releases it. A per-key TTL (Create with jetstream.KeyTTL,
// which needs LimitMarkerTTL on the bucket) is deliberately not used:
// Update publishes without a Nats-TTL header, so a renewed key would lose
// its TTL and never expire. With the bucket TTL every write, whichever
// call made it, ages out on its own.
//
// Timing, all measured from when the last successful write was sent (the
// server stored it later, so its expiry is later still):
//
//	TTL/3    renew
//	TTL/2    fenced: no new operation starts, no fetch, no reconciliation
//	3·TTL/4  in-flight operations are abandoned (cancelled, Nak'ed)
//	TTL      earliest moment the server removes the key; a standby's
//	         Create can only succeed after that
type lease struct {
	kv    jetstream.KeyValue
	ttl   time.Duration
	value []byte // this agent's LeaseHolder, as written to the key
	log   *slog.Logger
}

// openLease creates the bucket with the given TTL and replicas, or opens
// the existing one. An existing bucket's TTL wins: every agent must time its
// lease by what the server enforces. Its replica count is moved to replicas
// (zero: left alone), so that the lease outlives the loss of a NATS node.
func openLease(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int, self LeaseHolder, log *slog.Logger) (*lease, error) {
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      LeaseBucket,
		Description: "AccountDB Proxmox agent: leader lease (key leader, expires TTL after its last renewal)",
		TTL:         ttl,
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, LeaseBucket)
		if err == nil {
			var moved bool
			if moved, err = jetstreams.SetReplicas(ctx, js, "KV_"+LeaseBucket, replicas); moved {
				log.Info("agent lease bucket moved to the configured replica count", "bucket", LeaseBucket, "replicas", replicas)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("agent: lease bucket %s: %w", LeaseBucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("agent: lease bucket %s: %w", LeaseBucket, err)
	}
	if st.TTL() <= 0 {
		return nil, fmt.Errorf("agent: lease bucket %s has no TTL: a dead leader's lease would never expire; delete the bucket while no agent runs", LeaseBucket)
	}
	if st.TTL() != ttl {
		log.Warn("the lease bucket's TTL differs from the configured one; using the bucket's (delete the bucket while no agent runs to change it)",
			"bucket", LeaseBucket, "bucket_ttl", st.TTL(), "configured_ttl", ttl)
	}
	value, err := json.Marshal(self)
	if err != nil {
		return nil, err
	}
	return &lease{kv: kv, ttl: st.TTL(), value: value, log: log}, nil
}

// pollInterval is how often a standby tries to take an expired lease
// (expiry leaves no trace a watcher could see; a release does).
func (l *lease) pollInterval() time.Duration {
	return min(max(l.ttl/10, 50*time.Millisecond), time.Second)
}

// acquire blocks until this agent holds the lease, or ctx ends. It returns
// the key's revision and when the winning Create was sent.
func (l *lease) acquire(ctx context.Context) (rev uint64, sent time.Time, err error) {
	// A release (delete) wakes the standby at once; an expiry is found by
	// polling.
	released := make(chan struct{}, 1)
	if w, err := l.kv.Watch(ctx, leaseKey, jetstream.UpdatesOnly()); err == nil {
		defer func() { _ = w.Stop() }()
		go func() {
			for e := range w.Updates() {
				if e != nil && e.Operation() != jetstream.KeyValuePut {
					select {
					case released <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	var holder string
	for {
		sent = time.Now()
		cctx, cancel := context.WithTimeout(ctx, l.ttl/2)
		rev, err = l.kv.Create(cctx, leaseKey, l.value)
		cancel()
		if err == nil {
			return rev, sent, nil
		}
		if ctx.Err() != nil {
			return 0, time.Time{}, ctx.Err()
		}
		if errors.Is(err, jetstream.ErrKeyExists) {
			if h := l.holder(ctx); h != holder {
				holder = h
				l.log.Info("agent standby: the lease is held by another agent", "leader", holder, "lease_ttl", l.ttl)
			}
		} else {
			l.log.Debug("lease: create", "err", err)
		}
		select {
		case <-ctx.Done():
			return 0, time.Time{}, ctx.Err()
		case <-released:
		case <-time.After(l.pollInterval()):
		}
	}
}

// holder describes the current holder for logs. A lease holding this
// agent's own value is left over from a renewal sent before it was fenced
// and delivered late: it is deleted, since this agent is not acting.
func (l *lease) holder(ctx context.Context) string {
	gctx, cancel := context.WithTimeout(ctx, l.ttl/2)
	defer cancel()
	e, err := l.kv.Get(gctx, leaseKey)
	if err != nil {
		return ""
	}
	if bytes.Equal(e.Value(), l.value) {
		_ = l.kv.Delete(gctx, leaseKey, jetstream.LastRevision(e.Revision()))
		return "self (stale, deleted)"
	}
	var h LeaseHolder
	if json.Unmarshal(e.Value(), &h) != nil {
		return string(e.Value())
	}
	return fmt.Sprintf("%s (host %s, pid %d, started %s)", h.Instance, h.Host, h.PID, h.StartedAt.Format(time.RFC3339))
}

// Reasons a term ends.
const (
	leaseReleased = "released" // the agent stopped
	leaseFenced   = "fenced"   // no renewal succeeded within TTL/2
	leaseLost     = "lost"     // the key is gone or another agent's
)

// hold renews the lease every TTL/3 until ctx ends (the leader is done and
// will release it) or the lease is lost. When no renewal has succeeded for
// TTL/2 it closes fenced; at 3·TTL/4 it closes abandon. When the key turns
// out to be gone or someone else's, both close at once. It returns the last
// revision written and why it ended.
func (l *lease) hold(ctx context.Context, rev uint64, lastOK time.Time, fenced, abandon chan<- struct{}) (uint64, string) {
	fence := func(reason string, abandonAt time.Time) (uint64, string) {
		close(fenced)
		t := time.NewTimer(time.Until(abandonAt))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		close(abandon)
		return rev, reason
	}
	next := time.NewTimer(l.ttl / 3)
	defer next.Stop()
	for {
		fenceAt := lastOK.Add(l.ttl / 2)
		fenceTimer := time.NewTimer(time.Until(fenceAt))
		select {
		case <-ctx.Done():
			fenceTimer.Stop()
			return rev, leaseReleased
		case <-fenceTimer.C:
			l.log.Warn("agent lease: no renewal succeeded within TTL/2; fenced", "last_renewal", lastOK, "lease_ttl", l.ttl)
			return fence(leaseFenced, lastOK.Add(l.ttl*3/4))
		case <-next.C:
			fenceTimer.Stop()
		}
		sent, adopted := time.Now(), false
		uctx, cancel := context.WithDeadline(ctx, l.attemptDeadline(sent, fenceAt))
		newRev, err := l.kv.Update(uctx, leaseKey, l.value, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			// A renewal that timed out may still have been stored: the
			// key then holds this agent's value at a later revision.
			// Adopting it keeps lastOK, the last confirmed write.
			if e, gerr := l.kv.Get(uctx, leaseKey); gerr == nil && bytes.Equal(e.Value(), l.value) {
				newRev, err = e.Revision(), nil
				sent, adopted = lastOK, true
			} else if gerr == nil || errors.Is(gerr, jetstream.ErrKeyNotFound) {
				cancel()
				l.log.Warn("agent lease: lost (expired or taken by another agent)", "err", err)
				return fence(leaseLost, time.Now())
			}
		}
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return rev, leaseReleased
			}
			l.log.Warn("agent lease: renewal failed; retrying", "err", err)
			next.Reset(min(l.ttl/50, 100*time.Millisecond))
			continue
		}
		rev, lastOK = newRev, sent
		if adopted {
			next.Reset(0) // renew the adopted revision at once
		} else {
			next.Reset(l.ttl / 3)
		}
	}
}

// attemptDeadline bounds one renewal sent at sent. A publish sent while
// the bucket's stream elects a new leader (its node was lost) can go
// unanswered; waiting for it until fenceAt would fence a leader whose next
// try would have succeeded, so each try gets a slice of the TTL/6 between
// the first renewal and the fence, and the loop tries again.
func (l *lease) attemptDeadline(sent, fenceAt time.Time) time.Time {
	d := sent.Add(max(l.ttl/20, 200*time.Millisecond))
	if d.After(fenceAt) {
		return fenceAt
	}
	return d
}

// release deletes the key if it still holds this agent's last revision,
// so that a standby takes over at once rather than after the TTL.
func (l *lease) release(ctx context.Context, rev uint64) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(l.ttl/2, 5*time.Second))
	defer cancel()
	if err := l.kv.Delete(dctx, leaseKey, jetstream.LastRevision(rev)); err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		l.log.Warn("agent lease: release failed; the lease expires on its own", "err", err, "lease_ttl", l.ttl)
	}
}
