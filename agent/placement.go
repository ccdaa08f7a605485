package agent

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Config.PlacementRefresh is how long placement trusts what it last read
// of a cluster's nodes. Reading them asks every node for its status: with 20
// nodes, 21 requests per create, which cost more than the create itself
// (issue 16's figure 5b). Read once per refresh instead, and with the
// memory of every guest the agent has placed since counted as used, a
// burst of creates spreads over the nodes as it would if each had read the
// nodes anew (better: a clone uses no memory until it starts, so reads
// alone never saw the burst's own guests). What changes outside the agent
// is seen at the next refresh; a clone that fails for any reason other
// than capacity drops what was read, so its retry reads the nodes again.

// nodeMemory is a cluster's online nodes' free memory as placement last
// read it, and what the agent has placed on each since.
type nodeMemory struct {
	mu     sync.Mutex // held across a refresh: concurrent creates wait for one read
	read   time.Time  // zero: nothing trusted
	nodes  []nodeFree
	placed map[string]uint64 // bytes placed per node since read
}

type nodeFree struct {
	name string
	free uint64
}

// candidates are the online nodes whose free memory (from each node's
// status, less what the agent placed there since it read it) fits
// memoryMB, the most free memory first. Disk space is not compared: a
// node's root filesystem says nothing of its guest storage, so a node short
// of storage shows itself by failing the clone, and placement moves on to
// the next candidate.
func (a *Agent) candidates(ctx context.Context, p *pve, memoryMB int) ([]string, error) {
	m := &p.nodes
	m.mu.Lock()
	defer m.mu.Unlock()
	var statusErr error
	if m.read.IsZero() || time.Since(m.read) >= a.cfg.PlacementRefresh {
		nodes, listErr, err := a.readNodes(ctx, p)
		if listErr != nil {
			m.read = time.Time{}
			return nil, listErr
		}
		// A node that did not answer is left out; what was read is then
		// not trusted beyond this create, so the next one asks again.
		m.nodes, m.placed, m.read, statusErr = nodes, map[string]uint64{}, time.Now(), err
		if err != nil {
			m.read = time.Time{}
		}
	}
	var fit []nodeFree
	var best nodeFree
	need := uint64(memoryMB) << 20
	for _, n := range m.nodes {
		c := nodeFree{name: n.name, free: n.free - min(n.free, m.placed[n.name])}
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

// readNodes reads every online node's free memory from its status:
// listErr when the nodes cannot be listed, statusErr (the last) when some
// node's status could not be read, which leaves it out.
func (a *Agent) readNodes(ctx context.Context, p *pve) (out []nodeFree, listErr, statusErr error) {
	nodes, err := p.c.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err), nil
	}
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
		out = append(out, nodeFree{name: n.Node, free: node.Memory.Free})
	}
	return out, nil, statusErr
}

// placedOn counts memoryMB as used on node until the next refresh.
func (m *nodeMemory) placedOn(node string, memoryMB int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.placed != nil {
		m.placed[node] += uint64(memoryMB) << 20
	}
}

// forget drops what was read: the next placement reads the nodes.
func (m *nodeMemory) forget() {
	m.mu.Lock()
	m.read = time.Time{}
	m.mu.Unlock()
}
