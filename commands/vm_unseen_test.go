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

// indexedTables shows reconciliation the VMs of settled as the vms read
// model would (no projector runs in these tests).
type indexedTables struct {
	commands.Tables
	settled []commands.IndexedVM
}

func (t indexedTables) VMs() commands.VMIndex { return t }

func (t indexedTables) Settled(context.Context, uuid.UUID) ([]commands.IndexedVM, error) {
	return t.settled, nil
}

func (t indexedTables) Overdue(context.Context, time.Duration, int) ([]commands.IndexedVM, error) {
	return nil, nil
}

// runningVM creates a VM in a new tenant of e and records its create's
// result (running, vmid 100 on pve1); h's reconciliation sees it as the vms
// read model would, running.
func runningVM(t *testing.T, e *createEnv) (ten, vm uuid.UUID, h *commands.Handler) {
	t.Helper()
	ctx := context.Background()
	ten = e.tenant("acme", domain.Quota{MaxVMs: 10, MaxCores: 100, MaxMemoryMB: 1 << 20, MaxDiskGB: 1000})
	res, errs := e.createAll([]uuid.UUID{ten}, "")
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	vm = res[0].ID
	var request, correlation uuid.UUID
	if err := e.f.db.AdminConn(t).QueryRow(ctx, `SELECT event_id, correlation_id FROM events WHERE stream_id = $1 AND event_type = 'vm_create_requested'`,
		"vm-"+vm.String()).Scan(&request, &correlation); err != nil {
		t.Fatal(err)
	}
	if _, err := e.h.RecordResult(ctx, protocol.Result{RequestEventID: request, CorrelationID: correlation, TenantID: ten, VMID: vm,
		Action: domain.ActionCreate, Succeeded: true, ClusterID: e.cluster, Node: "pve1", PVEVMID: 100}); err != nil {
		t.Fatal(err)
	}
	h = commands.New(e.f.store, indexedTables{Tables: pgstore.New(e.f.store),
		settled: []commands.IndexedVM{{ID: vm, Tenant: ten, Status: domain.VMRunning}}}, auth.DefaultPasswordHasher(), commands.SessionConfig{})
	return ten, vm, h
}

// A running VM with a pool address goes missing from a listing: nothing is
// recorded and it keeps its address and quota; seen again, then missing
// once more, still nothing; missing from a second listing in a row, it is
// deleted and its address and quota are released.
func TestAGuestMissingFromOneListingKeepsItsAddress(t *testing.T) {
	ctx := context.Background()
	e := newCreateEnv(t, true)
	ten, vm, h := runningVM(t, e)
	start := time.Now()
	present := []protocol.ObservedGuest{{VMID: vm, TenantID: ten, Node: "pve1", PVEVMID: 100, Status: "running"}}
	listing := func(n int, guests []protocol.ObservedGuest) int {
		t.Helper()
		recorded, err := h.RecordObservation(ctx, protocol.Observation{ClusterID: e.cluster, Guests: guests, ObservedAt: start.Add(time.Duration(n) * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		return recorded
	}
	holds := func(when string) {
		t.Helper()
		v, err := e.h.LoadVM(ctx, ten, vm)
		if err != nil || v.Status != domain.VMRunning || v.HeldIPv4() != 1 {
			t.Fatalf("%s: VM %+v %v", when, v, err)
		}
		if p, err := e.h.LoadIPPool(ctx, e.pool); err != nil || len(p.Allocations) != 1 {
			t.Fatalf("%s: pool %+v %v", when, p, err)
		}
		if u := e.usage(ten); u.VMs != 1 || u.IPv4 != 1 {
			t.Fatalf("%s: usage %+v", when, u)
		}
	}
	for n, step := range []struct {
		guests []protocol.ObservedGuest
		when   string
	}{{nil, "missing once"}, {present, "seen again"}, {nil, "missing once more"}} {
		if recorded := listing(n, step.guests); recorded != 0 {
			t.Fatalf("%s: %d events recorded", step.when, recorded)
		}
		holds(step.when)
	}
	// The same listing delivered twice confirms nothing either.
	if recorded := listing(2, nil); recorded != 0 {
		t.Fatalf("the same listing again: %d events recorded", recorded)
	}
	holds("the same listing again")
	if recorded := listing(3, nil); recorded != 1 {
		t.Fatalf("missing twice in a row: %d events recorded, want the drift", recorded)
	}
	v, err := e.h.LoadVM(ctx, ten, vm)
	if err != nil || v.Status != domain.VMDeleted {
		t.Fatalf("VM %+v %v", v, err)
	}
	if p, err := e.h.LoadIPPool(ctx, e.pool); err != nil || len(p.Allocations) != 0 {
		t.Fatalf("pool %+v %v", p, err)
	}
	if u := e.usage(ten); u != (commands.Usage{}) {
		t.Fatalf("usage %+v", u)
	}
}
