package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

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
// Creates follow one another until a listing has overlapped one (on a busy
// machine a listing can miss a create's window).
func TestObservationsMarkGuestsTheAgentIsChanging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvesim.Options{TimeScale: 40 * time.Millisecond})
	e.startAgent(func(c *Config) { c.ReconcileInterval = 10 * time.Millisecond })
	e.waitInventory()

	created := map[uuid.UUID]bool{}
	// check returns how many listings marked a created guest changing, and
	// fails on one that showed a created guest stopped without the mark.
	check := func() int {
		t.Helper()
		changing := 0
		for _, o := range e.observations {
			for _, g := range o.Guests {
				switch {
				case !created[g.VMID]:
				case g.Changing:
					changing++
				case g.Status != "running":
					t.Fatalf("observation at %s: guest %s, not marked changing, while its create was under way", o.ObservedAt, g.Status)
				}
			}
		}
		return changing
	}
	spec := domain.VMSpec{Cores: 1, MemoryMB: 512, DiskGB: 8}
	for i := range 5 {
		vm := uuid.New()
		created[vm] = true
		e.ok(e.request(vm, e.createReq(domain.KindQEMU, fmt.Sprintf("midway-%d", i), "debian-12", spec)))
		e.waitFor("an observation of the guest running, after its create", func() bool {
			for _, g := range e.observations[len(e.observations)-1].Guests {
				if g.VMID == vm {
					return g.Status == "running" && !g.Changing
				}
			}
			return false
		})
		e.mu.Lock()
		changing := check()
		e.mu.Unlock()
		if changing > 0 {
			return
		}
	}
	t.Fatal("no listing overlapped any of five creates: the test shows nothing (slow the simulator's tasks)")
}

// No result is published while an observation is built and published: an
// operation begun after the observation's marks were taken cannot put its
// result on the bus before it.
func TestResultsWaitForTheObservationBeingPublished(t *testing.T) {
	c := newGuestChanges()
	inObservation, release := make(chan struct{}), make(chan struct{})
	observed := make(chan bool, 1)
	go func() {
		observed <- c.publishListing(time.Now(), func(func(uuid.UUID) bool) bool {
			close(inObservation)
			<-release
			return true
		})
	}()
	<-inObservation
	published := make(chan struct{})
	go func() {
		_ = c.publishResult(func() error { close(published); return nil })
	}()
	select {
	case <-published:
		t.Fatal("a result was published while an observation was being published")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if !<-observed {
		t.Fatal("the observation's outcome was lost")
	}
	select {
	case <-published:
	case <-time.After(5 * time.Second):
		t.Fatal("the result was not published after the observation")
	}
}
