package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/internal/stacktest"
)

// A second serve replica without ACCOUNTDB_JWT_PRIVATE_KEY would sign
// tokens the first refuses: it does not start.
func TestServeRefusesAReplicaWithItsOwnSigningKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := stacktest.Start(t, stacktest.Options{})
	sys, err := app.Start(ctx, app.Config{AppDatabaseURL: st.DB.AppURL, NATSURL: st.NATS.URL(), NATSOptions: st.NATS.CoreOptions(t),
		HTTPAddr: "127.0.0.1:0", Identity: app.Identity{Keys: st.Keys, CursorKey: bytes.Repeat([]byte{7}, 32)}, Vault: st.Vault},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg := bindConfig(fs)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	t.Setenv("ACCOUNTDB_JWT_PRIVATE_KEY", "")
	stacktest.Eventually(t, 10*time.Second, "the first replica's relay to lead", func() bool {
		other, err := sys.OtherCoreRunning(ctx)
		return err == nil && other
	})
	err = requireSharedSigningKey(ctx, sys, cfg, log)
	if err == nil || !strings.Contains(err.Error(), "ACCOUNTDB_JWT_PRIVATE_KEY") || !strings.Contains(err.Error(), "another accountdb serve") {
		t.Fatalf("second replica without a shared key: %v, want a start-up error naming ACCOUNTDB_JWT_PRIVATE_KEY", err)
	}
	cfg.NATS.Replicas = 3
	if err := requireSharedSigningKey(ctx, sys, cfg, log); err == nil || !strings.Contains(err.Error(), "ACCOUNTDB_NATS_REPLICAS=3") {
		t.Fatalf("clustered deployment without a shared key: %v, want a start-up error", err)
	}
	t.Setenv("ACCOUNTDB_JWT_PRIVATE_KEY", "a PEM the caller has parsed already")
	if err := requireSharedSigningKey(ctx, sys, cfg, log); err != nil {
		t.Fatalf("with a shared key: %v", err)
	}
}
