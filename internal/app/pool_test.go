package app_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/accountdb/accountdb/internal/app"
	"github.com/accountdb/accountdb/internal/authtest"
	"github.com/accountdb/accountdb/internal/natstest"
	"github.com/accountdb/accountdb/internal/pgtest"
)

// The service's pool: the size asked for (DefaultPoolSize when none), and
// with KeepPoolOpen every connection opened at start, before any request.
func TestThePoolIsSizedAndKeptOpen(t *testing.T) {
	db := pgtest.New(t)
	ns := natstest.Start(t)
	keys := authtest.KeySet(t)
	start := func(size int32, keepOpen bool) *app.System {
		sys, err := app.Start(context.Background(), app.Config{AppDatabaseURL: db.AppURL, NATSURL: ns.URL(), NATSOptions: ns.CoreOptions(t),
			HTTPAddr: "127.0.0.1:0", Identity: app.Identity{Keys: keys}, PoolSize: size, KeepPoolOpen: keepOpen}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sys.Close)
		return sys
	}

	if c := start(0, false).Pool.Config(); c.MaxConns != app.DefaultPoolSize() || c.MinConns != 0 {
		t.Fatalf("default pool: max %d (want %d), min %d", c.MaxConns, app.DefaultPoolSize(), c.MinConns)
	}
	if n := app.DefaultPoolSize(); n < 12 || n > 32 {
		t.Fatalf("DefaultPoolSize %d, outside 12–32", n)
	}

	kept := start(5, true).Pool
	if c := kept.Config(); c.MaxConns != 5 || c.MinConns != 5 {
		t.Fatalf("a pool of 5 kept open: max %d, min %d", c.MaxConns, c.MinConns)
	}
	eventually(t, 10*time.Second, "every connection of the pool open", func() bool { return kept.Stat().TotalConns() == 5 })
}
