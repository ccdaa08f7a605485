package domain

import (
	"fmt"
	"net/netip"

	"github.com/google/uuid"
)

// ClusterIPPoolAdded records on the cluster's stream that a pool serves one
// of its bridges. The cluster is where the rules across its pools are
// decided (no two overlap on a bridge, one default), on its own version:
// two concurrent pool creations on one cluster cannot both pass.
type ClusterIPPoolAdded struct {
	PoolID     uuid.UUID `json:"pool_id"`
	Bridge     string    `json:"bridge"`
	CIDR       string    `json:"cidr"`
	IPv6Prefix string    `json:"ipv6_prefix,omitempty"`
	Default    bool      `json:"default"`
}

func (ClusterIPPoolAdded) EventType() string { return "cluster_ip_pool_added" }

// ClusterPool is one pool of a cluster, as the cluster's rules need it.
type ClusterPool struct {
	ID         uuid.UUID `json:"id"`
	Bridge     string    `json:"bridge"`
	CIDR       string    `json:"cidr"`
	IPv6Prefix string    `json:"ipv6_prefix,omitempty"`
}

// AddIPPool decides adding pool id, configured as cfg, to the cluster.
// Overlapping networks on one bridge are refused naming the field; a second
// default pool is a conflict.
func (c *Cluster) AddIPPool(id uuid.UUID, cfg IPPoolConfig) ([]Event, error) {
	if !c.Exists() {
		return nil, ErrNotFound
	}
	v4 := netip.MustParsePrefix(cfg.CIDR)
	for _, p := range c.Pools {
		if p.ID == id {
			return nil, fmt.Errorf("%w: the pool exists", ErrConflict)
		}
		if p.Bridge != cfg.Bridge {
			continue
		}
		if netip.MustParsePrefix(p.CIDR).Overlaps(v4) {
			return nil, &ValidationError{Fields: map[string]string{"cidr": fmt.Sprintf("overlaps pool %s (%s) on bridge %s", p.ID, p.CIDR, p.Bridge)}}
		}
		if p.IPv6Prefix != "" && cfg.IPv6Prefix != "" && netip.MustParsePrefix(p.IPv6Prefix).Overlaps(netip.MustParsePrefix(cfg.IPv6Prefix)) {
			return nil, &ValidationError{Fields: map[string]string{"ipv6_prefix": fmt.Sprintf("overlaps pool %s (%s) on bridge %s", p.ID, p.IPv6Prefix, p.Bridge)}}
		}
	}
	if cfg.Default && c.DefaultPool != uuid.Nil {
		return nil, fmt.Errorf("%w: the cluster has a default pool already (%s)", ErrConflict, c.DefaultPool)
	}
	return []Event{&ClusterIPPoolAdded{PoolID: id, Bridge: cfg.Bridge, CIDR: cfg.CIDR, IPv6Prefix: cfg.IPv6Prefix, Default: cfg.Default}}, nil
}

// HasPool reports whether pool id serves the cluster.
func (c *Cluster) HasPool(id uuid.UUID) bool {
	for _, p := range c.Pools {
		if p.ID == id {
			return true
		}
	}
	return false
}
