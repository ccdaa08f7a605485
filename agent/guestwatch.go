package agent

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
)

// The watchers started after a create, start or reboot (guestaddrs.go) die
// with the agent: a VM that booted under an agent that then stopped, or one
// booted by hand on Proxmox, would never get its guest's addresses. So
// reconciliation also watches every guest it sees booted: on its first
// listing after the agent gains the lead every running guest (one question
// each to a guest that already knows its addresses: the core records a
// report only when it differs), later those newly running or whose uptime
// went down (rebooted). One watcher per VM at a time, whoever started it.

// guestWatches are the VMs whose guests are being asked now.
type guestWatches struct {
	mu  sync.Mutex
	vms map[uuid.UUID]bool
}

// claim reports whether vm had no watcher, making the caller its watcher
// until release.
func (w *guestWatches) claim(vm uuid.UUID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.vms[vm] {
		return false
	}
	if w.vms == nil {
		w.vms = map[uuid.UUID]bool{}
	}
	w.vms[vm] = true
	return true
}

func (w *guestWatches) release(vm uuid.UUID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.vms, vm)
}

// bootWatch is one reconciliation loop's memory of its cluster's running
// guests, and the watchers it started.
type bootWatch struct {
	uptime map[uuid.UUID]time.Duration // of each running AccountDB guest at the last listing
	slots  chan struct{}               // bounds the watchers asking at once
	wg     sync.WaitGroup
}

func newBootWatch(concurrency int) *bootWatch {
	return &bootWatch{uptime: map[uuid.UUID]time.Duration{}, slots: make(chan struct{}, concurrency)}
}

// watchBooted starts a watcher for every AccountDB guest among all that
// booted since b's last listing (every running one at the first).
func (a *Agent) watchBooted(ctx context.Context, b *bootWatch, all []guest) {
	now := make(map[uuid.UUID]time.Duration, len(b.uptime))
	for _, g := range all {
		vm, ok := g.accountDBVM()
		if !ok || g.Template || g.Status != "running" || g.tenant() == uuid.Nil {
			continue
		}
		now[vm] = g.Uptime
		if last, seen := b.uptime[vm]; seen && g.Uptime >= last {
			continue
		}
		// A guest up for long has had its chance to answer: ask it for
		// what is left of GuestAddressTimeout since its boot, a few times
		// at least.
		timeout := max(a.cfg.GuestAddressTimeout-g.Uptime, 2*a.cfg.GuestAddressPollMax)
		req := request{TenantID: g.tenant(), VMID: vm, Action: "observed_boot"}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			select {
			case b.slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-b.slots }()
			a.reportGuestAddresses(ctx, req, timeout)
		}()
	}
	b.uptime = now
}
