package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/api"
)

func TestServerLimitsConfig(t *testing.T) {
	parse := func(t *testing.T, opsDefault string, args ...string) *config {
		t.Helper()
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c := bindConfig(fs)
		bindServer(fs, c, opsDefault)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return c
	}

	c := parse(t, defaultServeOpsAddr)
	if c.Limits != api.DefaultLimits || c.OpsAddr != "127.0.0.1:9090" {
		t.Fatalf("defaults: %+v ops %q", c.Limits, c.OpsAddr)
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}

	t.Setenv("ACCOUNTDB_STREAMS_PER_USER", "4")
	t.Setenv("ACCOUNTDB_HTTP_READ_TIMEOUT", "5s")
	t.Setenv("ACCOUNTDB_OPS_ADDR", "127.0.0.1:9999")
	c = parse(t, "", "-exports-per-tenant", "3")
	if c.Limits.StreamsPerUser != 4 || c.Limits.ReadTimeout != 5*time.Second || c.Limits.ExportsPerTenant != 3 || c.OpsAddr != "127.0.0.1:9999" {
		t.Fatalf("from the environment and flags: %+v ops %q", c.Limits, c.OpsAddr)
	}

	t.Setenv("ACCOUNTDB_STREAMS_PER_USER", "many")
	t.Setenv("ACCOUNTDB_HTTP_READ_TIMEOUT", "soon")
	t.Setenv("ACCOUNTDB_OPS_ADDR", "127.0.0.1:8080")
	err := parse(t, "", "-exports-per-user", "-1").validate()
	for _, want := range []string{"ACCOUNTDB_STREAMS_PER_USER", "ACCOUNTDB_HTTP_READ_TIMEOUT", "ACCOUNTDB_OPS_ADDR", "negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config error does not mention %s: %v", want, err)
		}
	}
}
