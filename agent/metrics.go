package agent

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	taskSeconds *prometheus.HistogramVec
	retries     *prometheus.CounterVec
	reconciles  *prometheus.CounterVec
	// reconcileSeconds and reconcileGuests are the cost of a pass
	// (reconcile.go), by cluster name.
	reconcileSeconds *prometheus.HistogramVec
	reconcileGuests  *prometheus.GaugeVec
	clusters         prometheus.Gauge
	leader           prometheus.Gauge
	leaderLost       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		taskSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "accountdb_agent_task_seconds",
			Help:    "Time the agent took to carry out a VM request on Proxmox, by action and outcome (succeeded, failed, abandoned).",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800},
		}, []string{"action", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accountdb_agent_retries_total",
			Help: "Attempts of a VM request repeated after a transient Proxmox error, by action.",
		}, []string{"action"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accountdb_agent_reconciliations_total",
			Help: "Reconciliation passes over a cluster, by outcome (ok, error).",
		}, []string{"outcome"}),
		reconcileSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "accountdb_agent_reconcile_seconds",
			Help:    "Time one reconciliation pass over a cluster took (listing its guests, publishing observation and inventory), by cluster.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"cluster"}),
		reconcileGuests: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "accountdb_agent_reconcile_guests",
			Help: "Guests (templates included) the last reconciliation pass listed on a cluster, by cluster.",
		}, []string{"cluster"}),
		clusters: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "accountdb_agent_clusters",
			Help: "Proxmox clusters the agent has learned.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "accountdb_agent_leader",
			Help: "1 while this agent holds the leader lease and acts (consumes VM requests, reconciles), 0 while it is a standby.",
		}),
		leaderLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accountdb_agent_leadership_lost_total",
			Help: "Leader terms of this agent that ended other than by its own stop, by reason (fenced: no renewal within TTL/2; lost: the lease expired or was taken).",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.taskSeconds, m.retries, m.reconciles, m.reconcileSeconds, m.reconcileGuests, m.clusters, m.leader, m.leaderLost} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("agent metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(action, outcome string, d time.Duration) {
	m.taskSeconds.WithLabelValues(action, outcome).Observe(d.Seconds())
}
