package eventstore

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type storeMetrics struct {
	appendSeconds  prometheus.Histogram
	appendedEvents prometheus.Counter
	conflicts      prometheus.Counter
}

func newStoreMetrics(reg prometheus.Registerer) *storeMetrics {
	m := &storeMetrics{
		appendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "accountdb_eventstore_append_seconds",
			Help:    "Latency of one successful append, from call to commit.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		appendedEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "accountdb_eventstore_appended_events_total",
			Help: "Events appended.",
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "accountdb_eventstore_version_conflicts_total",
			Help: "Appends rejected for an expected-version mismatch.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.appendSeconds, m.appendedEvents, m.conflicts)
	}
	return m
}

func (m *storeMetrics) observeAppend(d time.Duration, events int) {
	m.appendSeconds.Observe(d.Seconds())
	m.appendedEvents.Add(float64(events))
}
