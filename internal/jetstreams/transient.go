package jetstreams

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Transient reports whether a JetStream API error is one a settling
// cluster gives: a node not yet current with its peers answers 503 "JetStream
// not enabled for account", a request sent during an election may go
// unanswered, and a stream assigned to a node that is still setting up the
// account's storage comes back 500 "error creating store for stream" (10049;
// the node's log says "could not create storage directory … no such file or
// directory", seen in CI). A refusal that will not change (too few servers
// for the replicas asked) is not transient.
func Transient(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) && (api.Code == 503 || api.ErrorCode == errCodeStreamCreate) {
		return true
	}
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) || errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}

// errCodeStreamCreate is nats-server's JSStreamCreateErrF ("error creating
// store for stream"); nats.go names no constant for it.
const errCodeStreamCreate jetstream.ErrorCode = 10049

// Retry runs do until it succeeds, fails with an error that is not
// Transient, or ctx ends (its last error then), pausing 250 ms between
// tries; retried calls whatever was answered meanwhile (for a log).
func Retry(ctx context.Context, do func() error, retried func(error)) error {
	for {
		err := do()
		if err == nil || !Transient(err) || ctx.Err() != nil {
			return err
		}
		retried(err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}
