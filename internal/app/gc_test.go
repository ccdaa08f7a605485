package app

import (
	"runtime/debug"
	"testing"
)

func TestTuneGCSetsTheDefaultUnlessGOGCIsSet(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if p, fromEnv := TuneGC(getenv); p != DefaultGCPercent || fromEnv {
		t.Fatalf("TuneGC without GOGC = %d, %v; want %d, false", p, fromEnv, DefaultGCPercent)
	}
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Fatalf("GC percent after TuneGC without GOGC = %d, want %d", got, DefaultGCPercent)
	}

	// GOGC set: Go applied it before main (here simulated as 100), and
	// TuneGC keeps it.
	env["GOGC"] = "100"
	if p, fromEnv := TuneGC(getenv); p != 100 || !fromEnv {
		t.Fatalf("TuneGC with GOGC=100 = %d, %v; want 100, true", p, fromEnv)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GC percent after TuneGC with GOGC set = %d, want it left at 100", got)
	}
}
