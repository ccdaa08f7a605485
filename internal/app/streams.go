package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/bus"
	"github.com/accountdb/accountdb/internal/jetstreams"
	"github.com/nats-io/nats.go/jetstream"
)

// ensureStreams declares the core's streams at replicas, retrying what a
// NATS cluster answers while it settles (jetstreams.Transient) until ctx
// ends; any other refusal is returned at once.
func ensureStreams(ctx context.Context, js jetstream.JetStream, replicas int, log *slog.Logger) error {
	err := jetstreams.Retry(ctx, func() error {
		if _, err := bus.EnsureStreamReplicas(ctx, js, replicas); err != nil {
			return err
		}
		_, err := protocol.EnsureStreamReplicas(ctx, js, replicas)
		return err
	}, func(err error) { log.Warn("jetstream streams: the cluster is not ready yet; retrying", "err", err) })
	if err != nil {
		return fmt.Errorf("jetstream stream: %w", err)
	}
	return nil
}
