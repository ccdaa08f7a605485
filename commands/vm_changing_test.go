package commands_test

import (
	"context"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
)

// A listing that caught a guest midway through an operation of the agent's
// (Changing) records nothing, however its status differs and however often
// in a row: the operation's result says how it ended. The same status from
// a listing taken outside any operation is drift.
func TestAGuestListedWhileChangingIsNoDrift(t *testing.T) {
	ctx := context.Background()
	e := newCreateEnv(t, false)
	ten, vm, h := runningVM(t, e)
	start := time.Now()
	listing := func(n int, changing bool) int {
		t.Helper()
		guests := []protocol.ObservedGuest{{VMID: vm, TenantID: ten, Node: "pve1", PVEVMID: 100, Status: "stopped", Changing: changing}}
		recorded, err := h.RecordObservation(ctx, protocol.Observation{ClusterID: e.cluster, Guests: guests, ObservedAt: start.Add(time.Duration(n) * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		return recorded
	}
	for n := range 3 {
		if recorded := listing(n, true); recorded != 0 {
			t.Fatalf("listing %d, changing: %d events recorded", n, recorded)
		}
		if v, err := e.h.LoadVM(ctx, ten, vm); err != nil || v.Status != domain.VMRunning {
			t.Fatalf("listing %d, changing: VM %+v %v", n, v, err)
		}
	}
	if recorded := listing(3, false); recorded != 1 {
		t.Fatalf("stopped outside any operation: %d events recorded, want the drift", recorded)
	}
	if v, err := e.h.LoadVM(ctx, ten, vm); err != nil || v.Status != domain.VMStopped {
		t.Fatalf("after the drift: VM %+v %v", v, err)
	}
}
