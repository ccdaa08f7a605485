package agent

import (
	"slices"
	"sync"

	"github.com/google/uuid"
)

// guestIndex is what the agent knows of one cluster's guests without
// asking: the last full listing (reconciliation's, or an operation's
// fallback), with what the agent itself did since laid over it (guests it
// cloned, tagged or deleted). Operations look a VM's guest up here instead
// of listing the whole cluster, whose cost grows with every guest on it.
//
// It is a hint, never the truth: a hit is checked against Proxmox
// (locate reads the guest's status and tags), and a miss falls back to a
// listing, except where a miss cannot be wrong (create, ops_create.go). A
// listing started before one of the agent's own changes and applied after
// it does not undo it: changes carry a sequence number, and a listing
// keeps those made after it began.
type guestIndex struct {
	mu      sync.Mutex
	warm    bool              // a full listing has been applied
	byVMID  map[int]guest     // every guest, templates included
	byVM    map[uuid.UUID]int // AccountDB VM id (its tag) → vmid
	tmpl    map[int]guest     // the templates among byVMID
	seq     uint64            // sequence of the last change
	changes []indexChange     // own changes, kept while a listing may predate them
	lists   map[uint64]int    // listings in flight, by the seq they began at
}

// indexChange is one of the agent's own results: g now exists (gone false)
// or vmid is gone.
type indexChange struct {
	seq  uint64
	g    guest
	gone bool
}

func newGuestIndex() *guestIndex {
	return &guestIndex{byVMID: map[int]guest{}, byVM: map[uuid.UUID]int{}, tmpl: map[int]guest{}, lists: map[uint64]int{}}
}

// beginListing marks the start of a full listing; pass what it returns to
// applyListing (or abortListing if the listing failed).
func (x *guestIndex) beginListing() uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.lists[x.seq]++
	return x.seq
}

func (x *guestIndex) abortListing(since uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.endListing(since)
}

// applyListing replaces the index with all, a full listing begun at since,
// and lays over it the agent's changes made after since.
func (x *guestIndex) applyListing(since uint64, all []guest) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.byVMID = make(map[int]guest, len(all))
	x.byVM = make(map[uuid.UUID]int, len(all))
	x.tmpl = map[int]guest{}
	for _, g := range all {
		x.set(g)
	}
	for _, c := range x.changes {
		if c.seq > since {
			x.applyChange(c)
		}
	}
	x.warm = true
	x.endListing(since)
}

// endListing forgets a listing in flight and the changes no listing in
// flight can predate; x.mu is held.
func (x *guestIndex) endListing(since uint64) {
	if x.lists[since]--; x.lists[since] <= 0 {
		delete(x.lists, since)
	}
	oldest := x.seq
	for s := range x.lists {
		oldest = min(oldest, s)
	}
	keep := x.changes[:0]
	for _, c := range x.changes {
		if c.seq > oldest {
			keep = append(keep, c)
		}
	}
	x.changes = keep
}

// put records a guest the agent made or changed (its tags, say).
func (x *guestIndex) put(g guest) { x.change(indexChange{g: g}) }

// remove records a guest the agent deleted.
func (x *guestIndex) remove(vmid int) { x.change(indexChange{g: guest{VMID: vmid}, gone: true}) }

func (x *guestIndex) change(c indexChange) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.seq++
	c.seq = x.seq
	x.applyChange(c)
	if len(x.lists) > 0 {
		x.changes = append(x.changes, c)
	}
}

// applyChange and set keep byVMID and byVM in step; x.mu is held.
func (x *guestIndex) applyChange(c indexChange) {
	if old, ok := x.byVMID[c.g.VMID]; ok {
		if vm, tagged := old.accountDBVM(); tagged && x.byVM[vm] == old.VMID {
			delete(x.byVM, vm)
		}
		delete(x.byVMID, c.g.VMID)
		delete(x.tmpl, c.g.VMID)
	}
	if !c.gone {
		x.set(c.g)
	}
}

func (x *guestIndex) set(g guest) {
	x.byVMID[g.VMID] = g
	if g.Template {
		x.tmpl[g.VMID] = g
	} else if vm, ok := g.accountDBVM(); ok {
		x.byVM[vm] = g.VMID
	}
}

// lookup is the guest tagged with vm, as last known.
func (x *guestIndex) lookup(vm uuid.UUID) (guest, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	vmid, ok := x.byVM[vm]
	if !ok {
		return guest{}, false
	}
	g, ok := x.byVMID[vmid]
	return g, ok
}

// isWarm reports whether a full listing has been applied: only then does a
// miss say anything.
func (x *guestIndex) isWarm() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.warm
}

// cool forgets that the index was filled, so that misses fall back to a
// listing until the next one: the agent is starting to lead, and another
// agent may have changed the cluster meanwhile.
func (x *guestIndex) cool() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.warm = false
}

// used reports whether a guest has vmid, as last known.
func (x *guestIndex) used(vmid int) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, ok := x.byVMID[vmid]
	return ok
}

// templates is the templates of that name and kind, as last known, by
// vmid (as a listing orders them).
func (x *guestIndex) templates(name, kind string) []guest {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []guest
	for _, g := range x.tmpl {
		if g.Name == name && g.Kind == kind {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b guest) int { return a.VMID - b.VMID })
	return out
}
