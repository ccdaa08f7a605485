package feed

import "github.com/prometheus/client_golang/prometheus"

// metrics tell an operator how GET /v1/events is doing: how many streams
// are open, how many tenant consumers this process holds on NATS for them,
// how many events it wrote, and how many clients it had to drop.
type metrics struct {
	subscribers     prometheus.Gauge
	tenantConsumers prometheus.Gauge
	catchUps        prometheus.Gauge
	sent            prometheus.Counter
	dropped         *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "accountdb_event_feed_subscribers",
			Help: "Open GET /v1/events streams.",
		}),
		tenantConsumers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "accountdb_event_feed_tenant_consumers",
			Help: "JetStream consumers this process holds for the live tails of tenants with subscribers (one per tenant).",
		}),
		catchUps: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "accountdb_event_feed_catch_up_consumers",
			Help: "Resumed streams still reading the past through their own JetStream consumer.",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "accountdb_event_feed_events_sent_total",
			Help: "Events written to GET /v1/events streams.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "accountdb_event_feed_dropped_total",
			Help: "Streams the server ended before the client did, by reason (slow client, consumer stopped, undecodable message).",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.subscribers, m.tenantConsumers, m.catchUps, m.sent, m.dropped)
	}
	return m
}
