package jetstreams

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// MinServerVersion is the oldest nats-server AccountDB runs against: 2.10
// brought consumers with several filter subjects (the agent's request
// consumer, the feed's; 2.9 refuses them with "multiple consumer filter
// subjects not supported"), and everything else AccountDB uses (key-value
// buckets, direct gets, Nats-Expected-Last-Sequence, stream replicas moved
// in place) is older.
const MinServerVersion = "2.10.0"

// RequireServerVersion waits (within ctx) until nc is connected and refuses
// a server older than MinServerVersion, naming both versions. Every process
// calls it at start, so an old server is a clear start-up error rather than
// a consumer that cannot be created later.
func RequireServerVersion(ctx context.Context, nc *nats.Conn) error {
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("nats: not connected to any of %v (%s): %w", nc.Servers(), nc.Status(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return CheckVersion(nc.ConnectedServerVersion(), nc.ConnectedUrlRedacted())
}

// CheckVersion refuses a server version have (found at where) older than
// MinServerVersion.
func CheckVersion(have, where string) error {
	if !atLeast(have, MinServerVersion) {
		return fmt.Errorf("nats-server %s at %s is too old: AccountDB needs nats-server %s or later "+
			"(2.9 cannot create consumers with several filter subjects); upgrade the server", have, where, MinServerVersion)
	}
	return nil
}

// atLeast compares dotted versions numerically ("2.10.0" > "2.9.25"); a
// pre-release or build suffix ("2.11.0-RC.1") counts as its release.
func atLeast(have, want string) bool {
	h, w := versionParts(have), versionParts(want)
	if h == nil {
		return false
	}
	for i := range 3 {
		if h[i] != w[i] {
			return h[i] > w[i]
		}
	}
	return true
}

func versionParts(v string) []int {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexAny(v, "-+ "); i >= 0 {
		v = v[:i]
	}
	fields := strings.Split(v, ".")
	if len(fields) < 2 || len(fields) > 3 {
		return nil
	}
	out := make([]int, 3)
	for i, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil
		}
		out[i] = n
	}
	return out
}
