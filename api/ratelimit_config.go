package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RateLimit is N requests per Window.
type RateLimit struct {
	N      int
	Window time.Duration
}

// The request rates a zero V1 field takes (README.md, "Configuration";
// docs/SECURITY.md, "Limits and caps"): per client address on the
// unauthenticated routes (sign-in, refresh, a console's WebSocket), and
// per user and per tenant on every authenticated one. They suit people
// using the web console; automation and benchmarks raise them
// (ACCOUNTDB_RATE_USER and the like).
var (
	DefaultPublicRate = RateLimit{N: 30, Window: time.Minute}
	DefaultUserRate   = RateLimit{N: 600, Window: time.Minute}
	DefaultTenantRate = RateLimit{N: 3000, Window: time.Minute}
)

func (l RateLimit) or(def RateLimit) RateLimit {
	if l.N <= 0 || l.Window <= 0 {
		return def
	}
	return l
}

// String is the form ParseRateLimit reads: "600/1m0s".
func (l RateLimit) String() string { return strconv.Itoa(l.N) + "/" + l.Window.String() }

// maxRateWindow bounds a window: the shared counters keep whole seconds
// in an integer column, and a window longer than a day limits nothing an
// operator means to limit.
const maxRateWindow = 24 * time.Hour

// ParseRateLimit reads "N/window" (600/1m, 50/1s, 100000/1h): N requests,
// a positive whole number, per window, a Go duration of at least a second
// and at most a day (the shared counters count whole seconds).
func ParseRateLimit(s string) (RateLimit, error) {
	n, w, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return RateLimit{}, fmt.Errorf("rate %q: want requests/window, such as 600/1m", s)
	}
	count, err := strconv.Atoi(n)
	if err != nil || count < 1 {
		return RateLimit{}, fmt.Errorf("rate %q: the number of requests must be a whole number of at least 1", s)
	}
	window, err := time.ParseDuration(w)
	if err != nil || window < time.Second || window > maxRateWindow || window%time.Second != 0 {
		return RateLimit{}, fmt.Errorf("rate %q: the window must be a whole number of seconds from 1s to 24h, such as 1m", s)
	}
	return RateLimit{N: count, Window: window}, nil
}
