package agent

import (
	"context"

	"github.com/accountdb/accountdb/domain"
)

// build finishes a cloned guest: size and tags (converge), then, while it
// has never run, its cloud-init settings and its network (n, the address
// from a pool; nil: DHCP) and a fresh cloud-init drive, then
// the first start. A guest found running was configured before it started
// (this order is the only one the agent follows), so a resumed create or
// rebuild does not touch its cloud-init again. configured, if set, is
// called once the guest is configured, before it starts. It returns the
// UPID of the last task it ran.
func (a *Agent) build(ctx context.Context, p *pve, g guest, spec domain.VMSpec, tags []string, ci *domain.CloudInit,
	n *domain.VMNetwork, configured func(context.Context) error) (string, error) {
	last, err := a.converge(ctx, p, g, spec, tags, false)
	if err != nil {
		return last, err
	}
	st, err := p.status(ctx, g)
	if err != nil || st == "running" {
		return last, err
	}
	if upid, err := a.applyCloudInit(ctx, p, g, ci, n, true); err != nil {
		return upid, err
	} else if upid != "" {
		last = upid
	}
	if configured != nil {
		if err := configured(ctx); err != nil {
			return last, err
		}
	}
	upid, err := a.power(ctx, p, g, st, startGuest)
	if upid != "" {
		last = upid
	}
	if err != nil && ctx.Err() == nil {
		// A start an earlier attempt (an agent that died) asked for may
		// have finished meanwhile: PVE then fails this one with "already
		// running", and the guest is where it should be.
		if now, serr := p.status(ctx, g); serr == nil && now == "running" {
			return last, nil
		}
	}
	return last, err
}
