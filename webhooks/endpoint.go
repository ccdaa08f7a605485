package webhooks

import (
	"time"

	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/eventlog"
	"github.com/accountdb/accountdb/internal/natsauth"
)

// liveEndpoint is an endpoint with its secrets opened, in memory only.
type liveEndpoint struct {
	Endpoint
	current, previous []byte
}

// keys are the keys that sign at now: the current one, and the previous
// one during its overlap.
func (e *liveEndpoint) keys(now time.Time) [][]byte {
	if e.previous != nil && now.Before(e.PreviousUntil) {
		return [][]byte{e.current, e.previous}
	}
	return [][]byte{e.current}
}

// wants reports whether the endpoint delivers the event at pos of type.
func (e *liveEndpoint) wants(pos eventlog.Position, eventType string) bool {
	if e.Generation > 0 {
		if pos.GlobalPosition < e.ReplayFrom {
			return false
		}
	} else if pos.Less(e.Start) {
		return false
	}
	return domain.WebhookWants(e.EventTypes, eventType)
}

func (d *Dispatcher) open(e Endpoint) (*liveEndpoint, error) {
	live := &liveEndpoint{Endpoint: e}
	secret, err := d.opener.Open(e.SealedSecret, domain.WebhookSecretBinding(e.ID))
	if err != nil {
		return nil, err
	}
	if live.current, err = DecodeSecret(secret); err != nil {
		return nil, err
	}
	if e.PreviousSealed != "" && d.now().Before(e.PreviousUntil) {
		if secret, err = d.opener.Open(e.PreviousSealed, domain.WebhookSecretBinding(e.ID)); err != nil {
			return nil, err
		}
		if live.previous, err = DecodeSecret(secret); err != nil {
			return nil, err
		}
	}
	return live, nil
}

// legacyConsumerPrefix starts the names of the durable consumers that
// deliveries went through before their cursors were kept in PostgreSQL
// (swept, redeliver.go).
const legacyConsumerPrefix = "webhook_"

// filterSubject is what e's worker reads: its tenant's events (the
// filter an external subscriber's credential of that tenant is pinned to,
// natsauth), or every tenant's for a platform endpoint. This is the tenant
// boundary: the server delivers nothing else to the consumer (the worker
// checks each event's tenant again).
func filterSubject(e Endpoint) string {
	if e.Platform {
		return bus.StreamSubjects
	}
	return natsauth.Subscriber(e.Tenant, "webhooks", time.Time{}).FilterSubject()
}
