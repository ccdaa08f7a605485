package jetstreams_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/internal/jetstreams"
	"github.com/accountdb/accountdb/internal/natsauth"
	"github.com/accountdb/accountdb/internal/natstest"
)

func TestServerVersionCheck(t *testing.T) {
	for v, ok := range map[string]bool{
		"2.10.0": true, "2.10.22": true, "2.11.0-RC.1": true, "2.15.2": true, "3.0.0": true, "v2.12.1": true,
		"2.9.25": false, "2.9.0": false, "2.2.6": false, "1.4.1": false, "": false, "garbage": false,
	} {
		err := jetstreams.CheckVersion(v, "nats://n1:4222")
		if ok != (err == nil) {
			t.Errorf("version %q: %v, want accepted %v", v, err, ok)
		}
		if err != nil && (!strings.Contains(err.Error(), v) || !strings.Contains(err.Error(), jetstreams.MinServerVersion)) {
			t.Errorf("version %q: message %q does not name both versions", v, err)
		}
	}
}

func TestRequireServerVersionAcceptsTheEmbeddedServer(t *testing.T) {
	ns := natstest.Start(t)
	nc := ns.Connect(t, natsauth.Core())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := jetstreams.RequireServerVersion(ctx, nc); err != nil {
		t.Fatal(err)
	}
}
