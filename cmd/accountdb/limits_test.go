package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/api"
	"github.com/accountdb/accountdb/internal/app"
)

// parseServeFlags binds serve's flags (operations address opsDefault) and
// parses args, with the environment the test has set.
func parseServeFlags(opsDefault string, args ...string) (*config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := bindConfig(fs)
	bindServer(fs, c, opsDefault)
	return c, fs.Parse(args)
}

func TestServerLimitsConfig(t *testing.T) {
	parse := func(t *testing.T, opsDefault string, args ...string) *config {
		t.Helper()
		c, err := parseServeFlags(opsDefault, args...)
		if err != nil {
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

// The API's request rates: the defaults, then the environment, then the
// flags, as requests/window; a malformed value is an error naming its
// variable.
func TestServerRatesConfig(t *testing.T) {
	parse := func(t *testing.T, args ...string) (*config, error) {
		t.Helper()
		return parseServeFlags(defaultServeOpsAddr, args...)
	}
	c, err := parse(t)
	if err != nil || c.PublicRate != api.DefaultPublicRate || c.UserRate != api.DefaultUserRate || c.TenantRate != api.DefaultTenantRate {
		t.Fatalf("defaults: %v %v %v (%v)", c.PublicRate, c.UserRate, c.TenantRate, err)
	}
	if api.DefaultUserRate != (api.RateLimit{N: 600, Window: time.Minute}) {
		t.Fatalf("the documented default per-user rate is 600/1m, not %v", api.DefaultUserRate)
	}

	t.Setenv("ACCOUNTDB_RATE_USER", "100000/1m")
	t.Setenv("ACCOUNTDB_RATE_TENANT", "50/1s")
	c, err = parse(t, "-rate-tenant", "2000000/1h", "-rate-public", "10/1m")
	if err != nil || c.validate() != nil {
		t.Fatalf("%v %v", err, c.validate())
	}
	if c.UserRate != (api.RateLimit{N: 100000, Window: time.Minute}) || c.TenantRate != (api.RateLimit{N: 2000000, Window: time.Hour}) ||
		c.PublicRate != (api.RateLimit{N: 10, Window: time.Minute}) {
		t.Fatalf("from the environment and flags: %v %v %v", c.PublicRate, c.UserRate, c.TenantRate)
	}

	t.Setenv("ACCOUNTDB_RATE_USER", "lots")
	c, err = parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "ACCOUNTDB_RATE_USER") {
		t.Fatalf("malformed ACCOUNTDB_RATE_USER: %v", err)
	}
	t.Setenv("ACCOUNTDB_RATE_USER", "")
	for _, bad := range []string{"0/1m", "10", "10/0s", "10/500ms", "10/48h", "-1/1m", "x/1m"} {
		if _, err := parse(t, "-rate-user", bad); err == nil {
			t.Errorf("-rate-user %s accepted", bad)
		}
	}
}

// The service's pool: app.DefaultPoolSize unless the environment or a flag
// says otherwise; serve and dev keep it open (appConfig); a size below
// minPoolSize is an error naming its variable.
func TestServerPoolConfig(t *testing.T) {
	parse := func(t *testing.T, args ...string) *config {
		t.Helper()
		c, err := parseServeFlags(defaultServeOpsAddr, args...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := parse(t); c.PoolSize != int(app.DefaultPoolSize()) || c.validate() != nil {
		t.Fatalf("default pool %d (want %d): %v", c.PoolSize, app.DefaultPoolSize(), c.validate())
	}
	t.Setenv("ACCOUNTDB_DB_POOL_SIZE", "20")
	if c := parse(t); c.PoolSize != 20 {
		t.Fatalf("ACCOUNTDB_DB_POOL_SIZE=20: pool %d", c.PoolSize)
	}
	if c := parse(t, "-db-pool-size", "6"); c.PoolSize != 6 {
		t.Fatalf("-db-pool-size 6 over the environment's 20: pool %d", c.PoolSize)
	}
	for _, bad := range []string{"-3", "1", "3"} {
		t.Setenv("ACCOUNTDB_DB_POOL_SIZE", bad)
		if err := parse(t).validate(); err == nil || !strings.Contains(err.Error(), "ACCOUNTDB_DB_POOL_SIZE") {
			t.Fatalf("a pool of %s: %v", bad, err)
		}
	}
	t.Setenv("ACCOUNTDB_DB_POOL_SIZE", "4")
	if err := parse(t).validate(); err != nil {
		t.Fatalf("a pool of 4: %v", err)
	}
	t.Setenv("ACCOUNTDB_DB_POOL_SIZE", "")

	acfg, err := appConfig(parse(t, "-db-pool-size", "14", "-data-dir", t.TempDir()), "nats://127.0.0.1:4222", nil)
	if err != nil {
		t.Fatal(err)
	}
	if acfg.PoolSize != 14 || !acfg.KeepPoolOpen {
		t.Fatalf("the server's pool: %d connections, kept open %v", acfg.PoolSize, acfg.KeepPoolOpen)
	}
}
