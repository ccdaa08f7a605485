// Package agent is AccountDB's Proxmox VE worker. It holds no database
// credentials: it learns clusters from cluster_registered events and reads VM
// requests from the ACCOUNTDB_EVENTS stream, carries them out on Proxmox with
// go-proxmox, and answers on the ACCOUNTDB_AGENT stream (package protocol)
// with results, observations of the guests it manages and each cluster's
// inventory. Any number of agents may run: they elect a leader through a
// lease in a JetStream key-value bucket (lease.go), only the leader acts,
// and the others are hot standbys. See README.md for the guarantees.
//
// It uses nats.go's jetstream API directly rather than watermill: it needs
// per-message InProgress heartbeats while a Proxmox task runs, a double
// (confirmed) ack only after the result is stored, per-VM serialization with
// bounded concurrency, and an ordered consumer whose catch-up point gates
// the request consumer; watermill's router hides the message handle that
// all of these need.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/internal/jetstreams"
	"github.com/accountdb/accountdb/vault"
)

// Defaults of Config.
const (
	DefaultConcurrency       = 8
	DefaultVMIDMin           = 100000
	DefaultVMIDMax           = 899999
	DefaultReconcileInterval = 30 * time.Second
	// DefaultAckWait is the default lease TTL: a crashed leader's requests
	// come back about when the standby leads (issue 19 saw them wait 60 s,
	// the old default, although the standby led after 11–15 s). Held messages
	// are kept alive by InProgress every third of it, so it does not bound
	// how long an operation may run.
	DefaultAckWait          = 15 * time.Second
	DefaultRetryAttempts    = 8
	DefaultRetryBaseDelay   = 500 * time.Millisecond
	DefaultRetryMaxDelay    = 30 * time.Second
	DefaultTaskPollInterval = time.Second
	DefaultOperationTimeout = 30 * time.Minute
	DefaultShutdownTimeout  = 30 * time.Second
	// A guest's addresses are asked for during up to 15 minutes after it
	// started, first after about 2 s, then backing off to every 30 s.
	DefaultGuestAddressTimeout = 15 * time.Minute
	DefaultGuestAddressPoll    = 2 * time.Second
	DefaultGuestAddressPollMax = 30 * time.Second
	DefaultClusterWait         = 15 * time.Second
	// DefaultPlacementRefresh is how long placement trusts its last read
	// of a cluster's nodes (placement.go).
	DefaultPlacementRefresh = 5 * time.Second
	DefaultLeaseTTL         = 15 * time.Second
)

// ConsumerName is the durable consumer of VM requests on ACCOUNTDB_EVENTS.
// It is a stable identifier: renaming it re-delivers every request.
const ConsumerName = "agent_vm"

// Config configures an Agent. Zero values take the defaults above.
type Config struct {
	JS         jetstream.JetStream
	Vault      *vault.Vault // opens each cluster's sealed API token secret
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are kept private

	// Concurrency bounds the Proxmox operations running at once; operations
	// on one VM never overlap whatever its value.
	Concurrency int
	// VMIDMin and VMIDMax bound the random PVE vmids of created guests.
	VMIDMin, VMIDMax int
	// ReconcileInterval is how often each cluster's guests and inventory
	// are published.
	ReconcileInterval time.Duration
	// PlacementRefresh is how long placement trusts what it last read of
	// a cluster's nodes' free memory, counting what it placed since as
	// used (placement.go).
	PlacementRefresh time.Duration
	// HTTPClient builds the HTTP client for a cluster; fingerprint is the
	// SHA-256 its certificate was pinned to (domain.FormatFingerprint), empty
	// to verify it against the system's CAs. Nil uses a client with sane
	// timeouts that does exactly that.
	HTTPClient func(fingerprint string) *http.Client

	// AckWait of the request consumer; the agent sends InProgress at a
	// third of it while an operation runs, so it only bounds how long a
	// crashed agent's messages wait before redelivery.
	AckWait time.Duration
	// RetryAttempts is the budget of attempts of one operation on
	// transient Proxmox errors (5xx, connection errors, locks).
	RetryAttempts int
	// RetryBaseDelay and RetryMaxDelay bound the exponential backoff
	// (with jitter) between attempts.
	RetryBaseDelay, RetryMaxDelay time.Duration
	// TaskPollInterval is the longest pause between polls of a PVE task's
	// status (polling starts faster and slows down to it).
	TaskPollInterval time.Duration
	// OperationTimeout bounds one request's whole execution.
	OperationTimeout time.Duration
	// ShutdownTimeout bounds how long in-flight operations may run on
	// after Run's context ends; operations still running then are
	// abandoned unacknowledged, and are redelivered.
	ShutdownTimeout time.Duration
	// ClusterWait bounds how long a request for a cluster the agent has
	// not learned yet waits for its registration.
	ClusterWait time.Duration
	// GuestAddressTimeout bounds how long, after a VM started, the agent
	// keeps asking its guest for its addresses; GuestAddressPoll and
	// GuestAddressPollMax bound the backoff between asks (guestaddrs.go).
	GuestAddressTimeout, GuestAddressPoll, GuestAddressPollMax time.Duration

	// LeaseTTL is the leader lease's lifetime: the TTL of the LeaseBucket
	// when this agent creates it (an existing bucket's TTL wins). The
	// leader renews every LeaseTTL/3 and stops acting when no renewal has
	// succeeded for LeaseTTL/2; a standby takes over at most about
	// LeaseTTL after a leader died without releasing the lease.
	LeaseTTL time.Duration
	// NATSReplicas is how many copies the ACCOUNTDB_AGENT stream and the
	// lease bucket keep on a NATS cluster (ACCOUNTDB_NATS_REPLICAS): they
	// are created with it and moved to it when it changes. Zero keeps what
	// they have (one copy when created).
	NATSReplicas int
	// Instance names this agent in the lease; empty: a random UUID.
	Instance string
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.VMIDMin == 0 {
		c.VMIDMin = DefaultVMIDMin
	}
	if c.VMIDMax == 0 {
		c.VMIDMax = DefaultVMIDMax
	}
	if c.HTTPClient == nil {
		c.HTTPClient = defaultHTTPClient
	}
	if c.Instance == "" {
		c.Instance = uuid.NewString()
	}
	positiveOr(&c.Concurrency, DefaultConcurrency)
	positiveOr(&c.ReconcileInterval, DefaultReconcileInterval)
	positiveOr(&c.PlacementRefresh, DefaultPlacementRefresh)
	positiveOr(&c.AckWait, DefaultAckWait)
	positiveOr(&c.RetryAttempts, DefaultRetryAttempts)
	positiveOr(&c.RetryBaseDelay, DefaultRetryBaseDelay)
	positiveOr(&c.RetryMaxDelay, DefaultRetryMaxDelay)
	positiveOr(&c.TaskPollInterval, DefaultTaskPollInterval)
	positiveOr(&c.OperationTimeout, DefaultOperationTimeout)
	positiveOr(&c.ShutdownTimeout, DefaultShutdownTimeout)
	positiveOr(&c.GuestAddressTimeout, DefaultGuestAddressTimeout)
	positiveOr(&c.GuestAddressPoll, DefaultGuestAddressPoll)
	positiveOr(&c.GuestAddressPollMax, DefaultGuestAddressPollMax)
	positiveOr(&c.ClusterWait, DefaultClusterWait)
	positiveOr(&c.LeaseTTL, DefaultLeaseTTL)
}

// positiveOr sets *v to def unless *v is positive.
func positiveOr[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.JS == nil {
		errs = append(errs, errors.New("agent: JS is required"))
	}
	if c.Vault == nil {
		errs = append(errs, errors.New("agent: Vault is required"))
	}
	if c.VMIDMin < 100 || c.VMIDMax > 999999999 || c.VMIDMin > c.VMIDMax {
		errs = append(errs, fmt.Errorf("agent: vmid range %d-%d must lie within 100-999999999", c.VMIDMin, c.VMIDMax))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("agent: AckWait %s must be at least 1s", c.AckWait))
	}
	if c.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("agent: LeaseTTL %s must be at least 1s", c.LeaseTTL))
	}
	return errors.Join(errs...)
}

// Agent executes VM requests on the registered Proxmox clusters. Any
// number of agents may run: they elect a leader through a lease in
// LeaseBucket, and only the leader acts; the others are hot standbys.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	metrics  *metrics
	registry *registry
	watching guestWatches  // VMs whose guests are asked for their addresses now
	changes  *guestChanges // the operations reconciliation's listings overlap

	mu       sync.Mutex
	healthy  bool       // caught up with the registrations: leading or ready to
	leader   bool       // holds the lease and acts
	onLeader func(bool) // tests: told of each change of leader, under mu
}

// New checks cfg and builds an agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, metrics: m, changes: newGuestChanges()}
	a.registry = newRegistry(a)
	return a, nil
}

// Healthy reports whether the agent is running and caught up with the
// cluster registrations: the leader, or a standby ready to take over.
func (a *Agent) Healthy() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.healthy
}

func (a *Agent) setHealthy(v bool) {
	a.mu.Lock()
	a.healthy = v
	a.mu.Unlock()
}

// Leader reports whether this agent holds the leader lease and acts:
// consumes VM requests and reconciles. It turns false as soon as the agent
// is fenced (no renewal for LeaseTTL/2), before its lease can expire.
func (a *Agent) Leader() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.leader
}

func (a *Agent) setLeader(v bool) {
	a.mu.Lock()
	changed := a.leader != v
	a.leader = v
	if changed && a.onLeader != nil {
		a.onLeader(v)
	}
	if v {
		a.metrics.leader.Set(1)
	} else {
		a.metrics.leader.Set(0)
	}
	a.mu.Unlock()
}

// Instance is this agent's name in the lease.
func (a *Agent) Instance() string { return a.cfg.Instance }

// Run works until ctx ends: it learns the registered clusters, then
// campaigns for the leader lease; while it leads, it executes VM requests
// and reconciles the clusters; otherwise it waits as a standby, its
// registry kept up to date. When ctx ends the leader stops fetching, lets
// in-flight operations finish for up to ShutdownTimeout, releases the lease
// and returns; unfinished requests stay unacknowledged and are redelivered.
func (a *Agent) Run(ctx context.Context) error {
	events, err := a.eventStream(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// A cluster still settling (a node not yet current, an election)
	// answers the set-up with errors that pass: retry those.
	var (
		cons jetstream.Consumer
		l    *lease
	)
	err = jetstreams.Retry(setup, func() error {
		if _, err := protocol.EnsureStreamReplicas(setup, a.cfg.JS, a.cfg.NATSReplicas); err != nil {
			return err
		}
		var err error
		if cons, err = events.CreateOrUpdateConsumer(setup, requestConsumerConfig(a.cfg.AckWait, a.cfg.Concurrency)); err != nil {
			return fmt.Errorf("agent: consumer %s: %w", ConsumerName, err)
		}
		l, err = openLease(setup, a.cfg.JS, a.cfg.LeaseTTL, a.cfg.NATSReplicas, newLeaseHolder(a.cfg.Instance), a.log)
		return err
	}, func(err error) { a.log.Warn("agent set-up: the NATS cluster is not ready yet; retrying", "err", err) })
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	regErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		regErr <- a.registry.run(ctx, events)
	}()

	// Requests wait until every registration already on the stream has
	// been read: otherwise a delete could wrongly find its guest "gone".
	select {
	case <-a.registry.caughtUp:
	case err := <-regErr:
		wg.Wait()
		return err
	case <-ctx.Done():
		wg.Wait()
		return nil
	}
	a.setHealthy(true)
	a.log.Info("agent ready; campaigning for the leader lease", "instance", a.cfg.Instance, "clusters", a.registry.count(), "lease_ttl", l.ttl)
	for ctx.Err() == nil {
		rev, sent, err := l.acquire(ctx)
		if err != nil {
			break // ctx ended
		}
		a.lead(ctx, cons, l, rev, sent)
	}
	a.setHealthy(false)
	wg.Wait()
	return nil
}

// lead is one leader term: reconciliation and the request consumer run
// until ctx ends (then in-flight operations drain for up to
// ShutdownTimeout) or the lease is fenced (then in-flight operations are
// abandoned before the lease can expire). The lease is released at the
// end, so that a standby takes over at once.
func (a *Agent) lead(ctx context.Context, cons jetstream.Consumer, l *lease, rev uint64, since time.Time) {
	fenced, abandon := make(chan struct{}), make(chan struct{})
	holdCtx, stopHold := context.WithCancel(context.WithoutCancel(ctx))
	type held struct {
		rev    uint64
		reason string
	}
	holdDone := make(chan held, 1)
	go func() {
		rev, reason := l.hold(holdCtx, rev, since, fenced, abandon)
		holdDone <- held{rev, reason}
	}()
	termCtx, endTerm := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case <-fenced:
			a.setLeader(false)
			endTerm()
		case <-termCtx.Done():
		}
	}()

	a.setLeader(true)
	a.log.Info("agent leadership gained: consuming VM requests and reconciling", "instance", a.cfg.Instance, "consumer", ConsumerName, "clusters", a.registry.count(), "lease_ttl", l.ttl)
	a.registry.startReconcile(termCtx)
	a.consume(termCtx, cons, min(5*time.Second, l.ttl/4), abandon)
	a.registry.stopReconcile()
	a.setLeader(false)
	endTerm()
	<-watchDone
	stopHold()
	h := <-holdDone
	l.release(ctx, h.rev)
	if h.reason == leaseReleased {
		a.log.Info("agent leadership released", "instance", a.cfg.Instance)
	} else {
		a.metrics.leaderLost.WithLabelValues(h.reason).Inc()
		a.log.Warn("agent leadership lost: stopped acting; campaigning again", "instance", a.cfg.Instance, "reason", h.reason)
	}
}

func requestConsumerConfig(ackWait time.Duration, concurrency int) jetstream.ConsumerConfig {
	subjects := make([]string, 0, 4)
	for _, t := range requestEventTypes {
		subjects = append(subjects, bus.SubjectPrefix+"*.vm."+t)
	}
	return jetstream.ConsumerConfig{
		Durable:        ConsumerName,
		Description:    "AccountDB Proxmox agent: VM requests",
		FilterSubjects: subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        ackWait,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		MaxDeliver:     -1,
		MaxAckPending:  max(64, concurrency*8),
		BackOff:        nil,
	}
}

// eventStream waits for ACCOUNTDB_EVENTS, which only the core may create:
// the agent's credentials cannot create, change or delete it (natsauth), so
// an agent started before the core waits here.
func (a *Agent) eventStream(ctx context.Context) (jetstream.Stream, error) {
	for logged := false; ; logged = true {
		s, err := a.cfg.JS.Stream(ctx, bus.StreamName)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("agent: stream %s: %w", bus.StreamName, err)
		}
		if !logged {
			a.log.Info("waiting for the core to create the event stream", "stream", bus.StreamName)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
