package app

import (
	"runtime/debug"
	"strings"
)

// DefaultGCPercent is the garbage collector's target for every AccountDB
// process unless GOGC says otherwise: collect when the heap has grown to three
// times what the last collection left, instead of Go's two. The processes'
// live heaps are tens of MiB, so the memory it costs is that much again; what
// it saves is about half the collector's work, 7–9 % of the whole system's
// CPU per VM created (docs/BENCHMARKS.md, "Issue 16, ninth session"). An
// operator with a large heap or a tight container sets GOGC and GOMEMLIMIT,
// which Go reads itself and this leaves alone.
const DefaultGCPercent = 200

// TuneGC sets DefaultGCPercent unless the environment sets GOGC (any value,
// "off" included). It reports the target now in force and whether it came
// from the environment.
func TuneGC(getenv func(string) string) (percent int, fromEnv bool) {
	if strings.TrimSpace(getenv("GOGC")) != "" {
		// Go applied it at start-up; reading it back leaves it unchanged.
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p, true
	}
	debug.SetGCPercent(DefaultGCPercent)
	return DefaultGCPercent, false
}
