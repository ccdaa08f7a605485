// Package jetstreams declares JetStream streams idempotently and moves them
// to the replica count a deployment asks for.
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
//
// cfg.Replicas zero keeps an existing stream's replica count (and creates a
// new one with one replica): callers that do not own the deployment's
// setting, such as the relay re-reading the stream, never scale it back.
// A positive cfg.Replicas moves the stream to that count in place; the
// server copies the stream to the new peers and the durable consumers with
// no replica count of their own follow it (see docs/SCALING.md).
func Ensure(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cfg.Name)
	switch {
	case err == nil:
		have := s.CachedInfo().Config
		if cfg.Replicas == 0 {
			cfg.Replicas = have.Replicas
		}
		if same(have, cfg) {
			return s, nil
		}
		s, err = js.UpdateStream(ctx, cfg)
		if err != nil && have.Replicas != cfg.Replicas {
			err = fmt.Errorf("from %d to %d replicas (a cluster needs at least as many JetStream servers): %w", have.Replicas, cfg.Replicas, err)
		}
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
		have.Duplicates == want.Duplicates && have.AllowDirect == want.AllowDirect && have.MaxAge == want.MaxAge &&
		max(have.Replicas, 1) == max(want.Replicas, 1)
}

// SetReplicas moves an existing stream (a key-value bucket is the stream
// KV_<bucket>) to replicas, keeping the rest of its configuration. Zero
// leaves it alone. It reports whether it changed anything.
func SetReplicas(ctx context.Context, js jetstream.JetStream, stream string, replicas int) (bool, error) {
	if replicas <= 0 {
		return false, nil
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", stream, err)
	}
	cfg := s.CachedInfo().Config
	if max(cfg.Replicas, 1) == replicas {
		return false, nil
	}
	from := cfg.Replicas
	cfg.Replicas = replicas
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return false, fmt.Errorf("stream %s from %d to %d replicas (a cluster needs at least as many JetStream servers): %w", stream, from, replicas, err)
	}
	return true, nil
}
