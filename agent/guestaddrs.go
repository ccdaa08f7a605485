package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/accountdb/accountdb/agent/protocol"
	"github.com/accountdb/accountdb/domain"
)

// Guest addresses. A VM is running when Proxmox says so; what addresses its
// guest has is known only later (the QEMU guest agent answers once the OS
// has booted, a container's interfaces once it has configured them). So a
// create, start or reboot that succeeded has its result published at once,
// and a watcher then asks the guest, with backoff, until it reports a
// global address or GuestAddressTimeout passes, and publishes what it
// found as its own message. Nothing waits for it.

// guestWatchActions are the actions after which the guest's addresses may
// have changed.
var guestWatchActions = map[string]bool{domain.ActionCreate: true, domain.ActionStart: true, domain.ActionReboot: true}

// errNoGuestAgent: the guest has no QEMU guest agent configured, so asking
// again will not help.
var errNoGuestAgent = errors.New("no QEMU guest agent configured")

// guestAddresses asks a running guest for its addresses through go-proxmox:
// global ones only (domain.GlobalAddresses), none while it cannot say yet.
func (p *pve) guestAddresses(ctx context.Context, g guest) ([]string, error) {
	var raw []string
	if g.Kind == kindLXC {
		ct, err := p.lxc(ctx, g)
		if err != nil {
			return nil, err
		}
		ifaces, err := ct.Interfaces(ctx)
		if err != nil {
			return nil, err
		}
		for _, i := range ifaces {
			if i != nil {
				raw = append(raw, i.Inet, i.Inet6)
			}
		}
	} else {
		ifaces, err := p.qemu(g).AgentGetNetworkIFaces(ctx)
		if err != nil {
			if strings.Contains(err.Error(), "No QEMU guest agent configured") {
				return nil, errNoGuestAgent
			}
			return nil, err
		}
		for _, i := range ifaces {
			for _, a := range i.IPAddresses {
				if a != nil {
					raw = append(raw, a.IPAddress+"/"+strconv.Itoa(a.Prefix))
				}
			}
		}
	}
	return domain.GlobalAddresses(raw), nil
}

// watchGuest starts, unless ctx has ended, a watcher of the guest of the VM
// a successful res is about; wait blocks until every watcher has returned.
func (d *dispatcher) watchGuest(req request, res protocol.Result) {
	if !res.Succeeded || !guestWatchActions[res.Action] || d.termCtx.Err() != nil {
		return
	}
	d.watchers.Add(1)
	go func() {
		defer d.watchers.Done()
		d.a.reportGuestAddresses(d.termCtx, req, d.a.cfg.GuestAddressTimeout)
	}()
}

// reportGuestAddresses polls the VM's guest until it reports an address,
// then publishes them; it gives up quietly after timeout (a guest without
// an agent, or without a network, is not an error of the VM's), and at
// once when another watcher asks that guest already (guestwatch.go).
func (a *Agent) reportGuestAddresses(ctx context.Context, req request, timeout time.Duration) {
	if !a.watching.claim(req.VMID) {
		return
	}
	defer a.watching.release(req.VMID)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	log := a.log.With("vm_id", req.VMID, "after", req.Action)
	for attempt := 1; ; attempt++ {
		addrs, err := a.askGuest(ctx, req)
		switch {
		case err == nil && len(addrs) > 0:
			if err := a.publishGuestAddresses(ctx, protocol.GuestAddresses{TenantID: req.TenantID, VMID: req.VMID,
				Addresses: addrs, ObservedAt: time.Now().UTC()}); err != nil && ctx.Err() == nil {
				log.Warn("guest addresses not published", "err", err)
				return
			}
			log.Info("guest addresses reported", "addresses", addrs, "attempts", attempt)
			return
		case errors.Is(err, errNoGuestAgent), errors.Is(err, errNoGuest):
			log.Info("guest addresses: nothing to ask", "err", err)
			return
		case err != nil:
			log.Debug("guest addresses not known yet", "attempt", attempt, "err", err)
		}
		if !sleep(ctx, backoff(attempt, a.cfg.GuestAddressPoll, a.cfg.GuestAddressPollMax)) {
			log.Info("guest reported no address in time", "timeout", timeout)
			return
		}
	}
}

// askGuest finds the VM's guest and asks it; a guest not running is not
// ready yet.
func (a *Agent) askGuest(ctx context.Context, req request) ([]string, error) {
	p, g, err := a.locate(ctx, req.VMID)
	if err != nil {
		return nil, err
	}
	if g == nil {
		return nil, fmt.Errorf("%w %s", errNoGuest, protocol.VMTag(req.VMID))
	}
	return p.guestAddresses(ctx, *g)
}

func (a *Agent) publishGuestAddresses(ctx context.Context, g protocol.GuestAddresses) error {
	msg, err := protocol.NewGuestAddressesMsg(g)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := a.cfg.JS.PublishMsg(pctx, msg)
		cancel()
		if err == nil {
			return nil
		}
		if !sleep(ctx, backoff(attempt, 200*time.Millisecond, 5*time.Second)) {
			return fmt.Errorf("publish guest addresses: %w", err)
		}
	}
}
