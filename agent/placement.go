package agent

import (
	"context"
	"fmt"
	"sort"
)

// candidates are the online nodes whose free memory (from each node's
// status) fits memoryMB, the most free memory first. Disk space is not
// compared: a node's root filesystem says nothing of its guest storage, so
// a node short of storage shows itself by failing the clone, and placement
// moves on to the next candidate.
func (a *Agent) candidates(ctx context.Context, p *pve, memoryMB int) ([]string, error) {
	nodes, err := p.c.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	type cand struct {
		name string
		free uint64
	}
	var fit []cand
	var best cand
	var statusErr error
	need := uint64(memoryMB) << 20
	for _, n := range nodes {
		if n == nil || n.Status != "online" {
			continue
		}
		node := p.node(n.Node)
		if err := node.Status(ctx); err != nil {
			a.log.Warn("node status", "cluster", p.name, "node", n.Node, "err", err)
			statusErr = fmt.Errorf("node %s status: %w", n.Node, err)
			continue
		}
		c := cand{name: n.Node, free: node.Memory.Free}
		if c.free > best.free {
			best = c
		}
		if c.free >= need {
			fit = append(fit, c)
		}
	}
	if len(fit) == 0 {
		if statusErr != nil {
			return nil, statusErr
		}
		if best.name == "" {
			return nil, fmt.Errorf("no online node on cluster %s", p.name)
		}
		return nil, fmt.Errorf("no online node on cluster %s has %d MiB of free memory (most: %s with %d MiB)", p.name, memoryMB, best.name, best.free>>20)
	}
	sort.SliceStable(fit, func(i, j int) bool {
		if fit[i].free != fit[j].free {
			return fit[i].free > fit[j].free
		}
		return fit[i].name < fit[j].name
	})
	out := make([]string, len(fit))
	for i, c := range fit {
		out[i] = c.name
	}
	return out, nil
}
