package agent

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
	"github.com/accountdb/accountdb/pvesim"
)

// An operation counts for a listing that began before it ended, running or
// finished, and not for one that began after.
func TestGuestChangesCountOperationsSinceTheListingBegan(t *testing.T) {
	c := newGuestChanges()
	vm, other := uuid.New(), uuid.New()
	before := time.Now()
	c.begin(vm)
	if !c.since(time.Now())(vm) || c.since(before)(other) {
		t.Fatal("an operation in progress must count for any listing, and only for its VM")
	}
	c.end(vm)
	if !c.since(before)(vm) {
		t.Fatal("an operation finished after the listing began must count")
	}
	time.Sleep(time.Millisecond)
	if c.since(time.Now())(vm) {
		t.Fatal("an operation finished before the listing began must not count")
	}
	c.begin(vm)
	c.begin(vm)
	c.end(vm)
	if !c.since(time.Now().Add(time.Second))(vm) {
		t.Fatal("one of two operations still runs")
	}
	c.end(vm)
	c.since(time.Now().Add(changesKept + time.Second))
	if len(c.running) != 0 || len(c.finished) != 0 {
		t.Fatalf("a listing long after the last operation must forget it: running %v, finished %v", c.running, c.finished)
	}
}

// A listing taken while the agent creates a VM catches its guest midway
// (cloned and tagged, not yet started). Such an observation reaches the core
// after the create's result has made the VM running, so it must say that
// the guest was changing, or the core records a stopped guest as drift.
func TestObservationsMarkGuestsTheAgentIsChanging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{TimeScale: 40 * time.Millisecond})
	e.startAgent(func(c *Config) { c.ReconcileInterval = 10 * time.Millisecond })
	e.waitInventory()

	vm := uuid.New()
	e.ok(e.request(vm, e.createReq(domain.KindQEMU, "midway", "debian-12", domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8})))
	settled := func(o protocol.Observation) (protocol.ObservedGuest, bool) {
		for _, g := range o.Guests {
			if g.VMID == vm {
				return g, true
			}
		}
		return protocol.ObservedGuest{}, false
	}
	e.waitFor("an observation of the guest running, after the create", func() bool {
		g, ok := settled(e.observations[len(e.observations)-1])
		return ok && g.Status == "running" && !g.Changing
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	changing := 0
	for _, o := range e.observations {
		g, listed := settled(o)
		switch {
		case !listed:
		case g.Changing:
			changing++
		case g.Status != "running":
			t.Fatalf("observation at %s: guest %s, not marked changing, while the create was under way", o.ObservedAt, g.Status)
		}
	}
	if changing == 0 {
		t.Fatal("no listing overlapped the create: the test shows nothing (slow the simulator's tasks)")
	}
}
