package agent

import (
	"context"

	"github.com/luthermonson/go-proxmox"
)

// power runs call on a guest whose current status is st.
func (a *Agent) power(ctx context.Context, p *pve, g guest, st string, call powerCall) (string, error) {
	return p.task(ctx, g,
		func(ct *proxmox.Container) (*proxmox.Task, error) {
			shutdown := func(ctx context.Context) (*proxmox.Task, error) { return ct.Shutdown(ctx, false, 120) }
			return call(ctx, ct, shutdown, st)
		},
		func(vm *proxmox.VirtualMachine) (*proxmox.Task, error) {
			return call(ctx, vm, vm.Shutdown, st)
		})
}

// powerHandle is the power calls go-proxmox's containers and VMs share;
// their Shutdown differs and is passed on its own.
type powerHandle interface {
	Start(context.Context) (*proxmox.Task, error)
	Stop(context.Context) (*proxmox.Task, error)
	Resume(context.Context) (*proxmox.Task, error)
	Reboot(context.Context) (*proxmox.Task, error)
}

// powerCall is the go-proxmox call of one power action on h, a guest whose
// status is st, with shutdown its graceful shutdown.
type powerCall func(ctx context.Context, h powerHandle, shutdown func(context.Context) (*proxmox.Task, error), st string) (*proxmox.Task, error)

// startGuest starts a guest, or resumes a paused one.
func startGuest(ctx context.Context, h powerHandle, _ func(context.Context) (*proxmox.Task, error), st string) (*proxmox.Task, error) {
	if st == "paused" {
		return h.Resume(ctx)
	}
	return h.Start(ctx)
}

// stopGuest stops a guest at once, as pulling its plug would.
func stopGuest(ctx context.Context, h powerHandle, _ func(context.Context) (*proxmox.Task, error), _ string) (*proxmox.Task, error) {
	return h.Stop(ctx)
}

// shutdownGuest asks the guest's OS to shut down (ACPI, or the container's
// init).
func shutdownGuest(ctx context.Context, _ powerHandle, shutdown func(context.Context) (*proxmox.Task, error), _ string) (*proxmox.Task, error) {
	return shutdown(ctx)
}

func rebootGuest(ctx context.Context, h powerHandle, _ func(context.Context) (*proxmox.Task, error), _ string) (*proxmox.Task, error) {
	return h.Reboot(ctx)
}

// guestOp acts on guest g of p, whose status is st, and returns the UPID
// of the task it ran, if any.
type guestOp func(a *Agent, ctx context.Context, p *pve, g guest, st string) (string, error)

// unlessIn runs call unless the guest is in status done already, so that a
// redelivered request succeeds again without touching the guest.
func unlessIn(done string, call powerCall) guestOp {
	return func(a *Agent, ctx context.Context, p *pve, g guest, st string) (string, error) {
		if st == done {
			return "", nil
		}
		return a.power(ctx, p, g, st, call)
	}
}

// always runs call whatever the guest's status: a reboot has no status
// that shows it done.
func always(call powerCall) guestOp {
	return func(a *Agent, ctx context.Context, p *pve, g guest, st string) (string, error) {
		return a.power(ctx, p, g, st, call)
	}
}
