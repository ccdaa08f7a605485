package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestNATSReplicasConfig(t *testing.T) {
	parse := func(t *testing.T, args ...string) *config {
		t.Helper()
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c := bindConfig(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := parse(t); c.NATS.Replicas != 1 || c.validate() != nil {
		t.Fatalf("default replicas %d (%v), want 1", c.NATS.Replicas, c.validate())
	}
	t.Setenv("ACCOUNTDB_NATS_REPLICAS", "3")
	if c := parse(t); c.NATS.Replicas != 3 || c.validate() != nil {
		t.Fatalf("replicas from the environment %d (%v), want 3", c.NATS.Replicas, c.validate())
	}
	if c := parse(t, "-nats-replicas", "5"); c.NATS.Replicas != 5 {
		t.Fatalf("replicas from the flag %d, want 5", c.NATS.Replicas)
	}
	for _, bad := range []string{"three", "0", "6", "-1"} {
		t.Setenv("ACCOUNTDB_NATS_REPLICAS", bad)
		if err := parse(t).validate(); err == nil || !strings.Contains(err.Error(), "ACCOUNTDB_NATS_REPLICAS") {
			t.Errorf("ACCOUNTDB_NATS_REPLICAS=%s: %v, want an error naming it", bad, err)
		}
	}
}
