package relay

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	published  prometheus.Counter
	duplicates prometheus.Counter
	lag        prometheus.Histogram
	active     prometheus.Gauge
	checkpoint prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "accountdb_relay_published_events_total",
			Help: "Events the relay published and JetStream stored.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "accountdb_relay_duplicate_events_total",
			Help: "Events the relay published again and JetStream acknowledged as duplicates.",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "accountdb_relay_publish_lag_seconds",
			Help:    "Time from an event's recorded_at to JetStream's acknowledgement of it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "accountdb_relay_active",
			Help: "1 while this relay holds the publisher lock, 0 on standby.",
		}),
		checkpoint: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "accountdb_relay_checkpoint_position",
			Help: "Global position of the last event the relay published and checkpointed.",
		}),
	}
	if reg != nil {
		m.published = register(reg, m.published)
		m.duplicates = register(reg, m.duplicates)
		m.lag = register(reg, m.lag)
		m.active = register(reg, m.active)
		m.checkpoint = register(reg, m.checkpoint)
	}
	return m
}

// register shares the collector already registered under the same name, so
// that two relays of one process (a test, a standby) can use one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}
