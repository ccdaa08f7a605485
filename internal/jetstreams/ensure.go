// Package jetstreams declares JetStream streams idempotently.
package jetstreams

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// Ensure returns the stream named by cfg, creating it when missing and
// updating it only when its configuration differs (an upgrade). Several
// processes call it at start-up: an unconditional CreateOrUpdateStream would
// rewrite the configuration of a stream in use each time, and nats-server
// races a configuration update against consumers being created on the same
// stream.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cfg.Name)
	switch {
	case err == nil:
		if same(s.CachedInfo().Config, cfg) {
			return s, nil
		}
		s, err = js.UpdateStream(ctx, cfg)
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, cfg.Name) // another process created it meanwhile
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// same compares the settings AccountDB declares; the server fills in others.
func same(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Description == want.Description &&
		have.Storage == want.Storage && have.Retention == want.Retention && have.Discard == want.Discard &&
		have.Duplicates == want.Duplicates && have.AllowDirect == want.AllowDirect && have.MaxAge == want.MaxAge
}
