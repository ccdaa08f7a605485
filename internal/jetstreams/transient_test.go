package jetstreams_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/accountdb/accountdb/internal/jetstreams"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// What a settling cluster answers is retried at start; a refusal that
// will not change (too few servers for the replicas) is not.
func TestTransientStreamErrors(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("ensure stream ACCOUNTDB_EVENTS: %w", err) }
	for _, c := range []struct {
		err  error
		want bool
	}{
		{wrap(&jetstream.APIError{Code: 503, ErrorCode: 10039, Description: "JetStream not enabled for account"}), true},
		{wrap(jetstream.ErrJetStreamNotEnabledForAccount), true},
		{wrap(nats.ErrTimeout), true},
		{wrap(nats.ErrNoResponders), true},
		{wrap(&jetstream.APIError{Code: 500, ErrorCode: 10049, Description: "error creating store for stream"}), true},
		{wrap(&jetstream.APIError{Code: 500, ErrorCode: 10023, Description: "insufficient resources"}), false},
		{wrap(errors.New("stream name already in use with a different configuration")), false},
	} {
		if got := jetstreams.Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
