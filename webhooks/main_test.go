package webhooks_test

import (
	"testing"
	"time"

	"github.com/accountdb/accountdb/internal/stacktest"
)

// TestMain lets TestCoreKilledMidDelivery run a core in a process of its
// own (this test binary, started again) that it can kill.
func TestMain(m *testing.M) { stacktest.Main(m) }

// pipelineWait bounds a wait for the whole pipeline (append, relay,
// dispatcher, receiver, projector). Eventually returns as soon as the
// condition holds, so the bound matters only when the machine is slow: make
// test runs every package at once on two cores, where 15 s was once too short.
const pipelineWait = 60 * time.Second
