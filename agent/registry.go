package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/luthermonson/go-proxmox"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/domain"
)

// registrationSubject matches every cluster registration on ACCOUNTDB_EVENTS.
var registrationSubject = bus.SubjectPrefix + "*." + domain.StreamCluster + "." + domain.ClusterRegistered{}.EventType()

// registry is the set of clusters the agent knows, learned from
// cluster_registered events through an ordered consumer that stays open, so
// a cluster registered while the agent runs is picked up at once. A standby
// keeps it up to date too, so that it can act as soon as it leads; only the
// leader runs the clusters' reconciliation loops (startReconcile).
type registry struct {
	a *Agent

	mu       sync.Mutex
	clusters map[uuid.UUID]*cluster
	changed  chan struct{} // closed (and replaced) whenever clusters changes

	caughtUp     chan struct{}
	caughtUpOnce sync.Once
	leading      context.Context // non-nil while this agent leads: reconciliation runs
	loops        sync.WaitGroup  // reconciliation loops
}

// cluster is one registered cluster: a go-proxmox client, or the reason
// there is none (a secret the vault cannot open).
type cluster struct {
	ID     uuid.UUID
	Name   string
	APIURL string
	pve    *pve
	err    error
	cancel context.CancelFunc // stops its reconciliation loop; nil when none runs
}

func newRegistry(a *Agent) *registry {
	return &registry{a: a, clusters: map[uuid.UUID]*cluster{}, changed: make(chan struct{}), caughtUp: make(chan struct{})}
}

func (r *registry) markCaughtUp() { r.caughtUpOnce.Do(func() { close(r.caughtUp) }) }

// run reads registrations until ctx ends. It closes caughtUp once every
// registration that was on the stream when it started has been applied.
func (r *registry) run(ctx context.Context, stream jetstream.Stream) error {
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(registrationSubject))
	if err != nil {
		return fmt.Errorf("agent: cluster registrations: %w", err)
	}
	if len(info.State.Subjects) == 0 {
		r.markCaughtUp()
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{registrationSubject},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("agent: cluster registrations consumer: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("agent: cluster registrations: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			r.a.log.Warn("cluster registrations", "err", err)
			if !sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		r.apply(msg.Data())
		if md, err := msg.Metadata(); err == nil && md.NumPending == 0 {
			r.markCaughtUp()
		}
	}
}

// apply learns one registration; a malformed one is logged and skipped.
func (r *registry) apply(data []byte) {
	ev, err := bus.DecodeMessage(data)
	if err != nil {
		r.a.log.Error("cluster registration: undecodable message", "err", err)
		return
	}
	de, err := domain.DecodeEvent(ev.Type, ev.Data)
	if err != nil {
		r.a.log.Error("cluster registration: undecodable event", "event_id", ev.EventID, "err", err)
		return
	}
	reg, ok := de.(*domain.ClusterRegistered)
	if !ok {
		return
	}
	c := &cluster{ID: ev.Stream.ID, Name: reg.Name, APIURL: reg.APIURL}
	secret, err := r.a.cfg.Vault.Open(reg.SealedSecret, domain.ClusterSecretBinding(ev.Stream.ID, reg.APIURL))
	if reg.InsecureTLS && reg.TLSFingerprint == "" {
		// Registered before verification could no longer be turned off.
		c.err = fmt.Errorf("cluster %s was registered with insecure_tls, which is no longer honoured: register it again with its tls_fingerprint", c.Name)
		r.a.log.Error("cluster registration", "cluster_id", c.ID, "cluster", c.Name, "err", c.err)
	} else if err != nil {
		c.err = fmt.Errorf("cluster %s: the API token secret cannot be opened with this agent's secrets key: %w", c.Name, err)
		r.a.log.Error("cluster registration", "cluster_id", c.ID, "cluster", c.Name, "err", c.err)
	} else {
		hc := wrapHTTPClient(r.a.cfg.HTTPClient(reg.TLSFingerprint))
		client := proxmox.NewClient(reg.APIURL, proxmox.WithAPIToken(reg.TokenID, secret), proxmox.WithHTTPClient(hc))
		c.pve = &pve{id: c.ID, name: c.Name, c: client, pollMax: r.a.cfg.TaskPollInterval, index: newGuestIndex()}
	}
	r.put(c)
	r.a.log.Info("cluster learned", "cluster_id", c.ID, "cluster", c.Name, "api_url", c.APIURL, "token_id", reg.TokenID, "tls_fingerprint", reg.TLSFingerprint, "usable", c.err == nil)
}

// put adds or replaces a cluster and, on the leader, (re)starts its
// reconciliation.
func (r *registry) put(c *cluster) {
	r.mu.Lock()
	if old, ok := r.clusters[c.ID]; ok && old.cancel != nil {
		old.cancel()
	}
	if r.leading != nil {
		r.startLoop(c)
	}
	r.clusters[c.ID] = c
	close(r.changed)
	r.changed = make(chan struct{})
	n := len(r.clusters)
	r.mu.Unlock()
	r.a.metrics.clusters.Set(float64(n))
}

// startLoop starts a cluster's reconciliation loop under r.leading; r.mu
// is held.
func (r *registry) startLoop(c *cluster) {
	if c.pve == nil {
		return
	}
	lctx, cancel := context.WithCancel(r.leading)
	c.cancel = cancel
	r.loops.Add(1)
	go func() {
		defer r.loops.Done()
		r.a.reconcileLoop(lctx, c.pve)
	}()
}

// startReconcile runs every cluster's reconciliation loop, and those of
// clusters learned later, until ctx ends or stopReconcile.
func (r *registry) startReconcile(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leading = ctx
	for _, c := range r.clusters {
		r.startLoop(c)
	}
}

// stopReconcile ends every reconciliation loop and waits for them.
func (r *registry) stopReconcile() {
	r.mu.Lock()
	r.leading = nil
	for _, c := range r.clusters {
		if c.cancel != nil {
			c.cancel()
			c.cancel = nil
		}
	}
	r.mu.Unlock()
	r.loops.Wait()
}

func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.clusters)
}

// all is a snapshot of the known clusters, ordered by id.
func (r *registry) all() []*cluster {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*cluster, 0, len(r.clusters))
	for _, c := range r.clusters {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID.String() < out[j].ID.String() })
	return out
}

// errUnknownCluster is a request for a cluster that was never registered.
var errUnknownCluster = errors.New("cluster is not registered")

// get returns a cluster's client, waiting up to wait for a registration the
// agent has not read yet.
func (r *registry) get(ctx context.Context, id uuid.UUID, wait time.Duration) (*pve, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		r.mu.Lock()
		c, ok := r.clusters[id]
		changed := r.changed
		r.mu.Unlock()
		if ok {
			if c.err != nil {
				return nil, c.err
			}
			return c.pve, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil, fmt.Errorf("%w: %s", errUnknownCluster, id)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
