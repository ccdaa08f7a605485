package projections

import (
	"time"

	"github.com/accountdb/accountdb/eventlog"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the projector runtime's Prometheus series, labelled by
// projector. Create one set per registry and share it between runners.
type Metrics struct {
	applied    *prometheus.CounterVec
	lag        *prometheus.GaugeVec
	checkpoint *prometheus.GaugeVec
	gaps       *prometheus.CounterVec
}

// NewMetrics creates the series and registers them on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accountdb_projector_applied_events_total",
			Help: "Events applied to a read model (skipped duplicates are not counted).",
		}, []string{"projector"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "accountdb_projector_lag_seconds",
			Help: "Time from an event's recording to its commit into the read model, for the last batch applied.",
		}, []string{"projector"}),
		checkpoint: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "accountdb_projector_checkpoint_position",
			Help: "Global position of the last event applied to the read model.",
		}, []string{"projector"}),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accountdb_projector_gap_messages_total",
			Help: "Messages delivered ahead of their predecessor and handed back to JetStream for later.",
		}, []string{"projector"}),
	}
	if reg != nil {
		reg.MustRegister(m.applied, m.lag, m.checkpoint, m.gaps)
	}
	return m
}

// projectorMetrics is one projector's children of the vectors.
type projectorMetrics struct {
	applied    prometheus.Counter
	lag        prometheus.Gauge
	checkpoint prometheus.Gauge
	gaps       prometheus.Counter
}

func (m *Metrics) forProjector(name string) projectorMetrics {
	return projectorMetrics{
		applied:    m.applied.WithLabelValues(name),
		lag:        m.lag.WithLabelValues(name),
		checkpoint: m.checkpoint.WithLabelValues(name),
		gaps:       m.gaps.WithLabelValues(name),
	}
}

func (m projectorMetrics) observeCommit(applied int, last eventlog.Event, cp eventlog.Position, committed time.Time) {
	m.checkpoint.Set(float64(cp.GlobalPosition))
	if applied == 0 {
		return
	}
	m.applied.Add(float64(applied))
	if !last.RecordedAt.IsZero() { // else only events it ignores: the lag stays as it was
		m.lag.Set(max(committed.Sub(last.RecordedAt).Seconds(), 0))
	}
}
