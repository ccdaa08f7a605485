package webhooks_test

import (
	"testing"

	"github.com/accountdb/accountdb/internal/stacktest"
)

// TestMain lets TestCoreKilledMidDelivery run a core in a process of its
// own (this test binary, started again) that it can kill.
func TestMain(m *testing.M) { stacktest.Main(m) }
