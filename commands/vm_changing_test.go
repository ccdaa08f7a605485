package commands_test

import (
	"context"
	"testing"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/auth"
	"github.com/accountdb/accountdb/commands"
	"github.com/accountdb/accountdb/commands/pgstore"
	"github.com/accountdb/accountdb/domain"
	"github.com/google/uuid"
)

// A listing that caught a guest midway through an operation of the agent's
// (Changing) records nothing, however its status differs and however often
// in a row: the operation's result says how it ended. The same status from
// a listing taken outside any operation is drift.
func TestAGuestListedWhileChangingIsNoDrift(t *testing.T) {
	ctx := context.Background()
	e := newCreateEnv(t, false)
	ten := e.tenant("acme", domain.Quota{MaxVMs: 10, MaxCores: 100, MaxMemoryMB: 1 << 20, MaxDiskGB: 1000})
	res, errs := e.createAll([]uuid.UUID{ten}, "")
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	vm := res[0].ID
	var request, correlation uuid.UUID
	if err := e.f.db.AdminConn(t).QueryRow(ctx, `SELECT event_id, correlation_id FROM events WHERE stream_id = $1 AND event_type = 'vm_create_requested'`,
		"vm-"+vm.String()).Scan(&request, &correlation); err != nil {
		t.Fatal(err)
	}
	if _, err := e.h.RecordResult(ctx, protocol.Result{RequestEventID: request, CorrelationID: correlation, TenantID: ten, VMID: vm,
		Action: domain.ActionCreate, Succeeded: true, ClusterID: e.cluster, Node: "pve1", PVEVMID: 100}); err != nil {
		t.Fatal(err)
	}
	h := commands.New(e.f.store, indexedTables{Tables: pgstore.New(e.f.store),
		settled: []commands.IndexedVM{{ID: vm, Tenant: ten, Status: domain.VMRunning}}}, auth.DefaultPasswordHasher(), commands.SessionConfig{})
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
