package pglimits

import "time"

// SetSweepPeriod lets a test tell the sweep counted requests trigger from
// the periodic one.
func SetSweepPeriod(s *Store, d time.Duration) { s.sweepPeriod = d }

// SweepEvery is how many counted requests trigger a sweep.
const SweepEvery = sweepEvery
