package domain

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/uuid"
)

// IPPoolInput is a pool as a platform administrator asks for it.
type IPPoolInput struct {
	Name        string
	ClusterID   uuid.UUID
	Bridge      string
	VLAN        *int
	CIDR        string
	Gateway     string
	RangeStart  string
	RangeEnd    string
	Nameservers []string
	IPv6Prefix  string
	Default     bool
}

// Limits of a pool.
const (
	minPoolPrefixBits = 8  // a /8 at most: the allocator walks the range
	maxPoolPrefixBits = 30 // a /30 at least: network, gateway, one guest, broadcast
	maxVLAN           = 4094
)

// NewIPPoolConfig validates a pool on its own (cidr, gateway and range
// inside it, VLAN tag, bridge name, nameservers, IPv6 prefix wide enough
// for every IPv4 host part); errors name the request's fields. Whether it
// overlaps other pools of its cluster is the cluster's rule (AddIPPool).
func NewIPPoolConfig(in IPPoolInput) (IPPoolConfig, error) {
	f := fieldErrors{}
	c := IPPoolConfig{Name: validateTenantName(f, in.Name), ClusterID: in.ClusterID, Bridge: strings.TrimSpace(in.Bridge),
		Nameservers: []string{}, Default: in.Default}
	if !bridgePattern.MatchString(c.Bridge) {
		f.add("bridge", "must be a Linux bridge name such as vmbr0 (a letter, then letters, digits, _ . -; at most 15)")
	}
	if in.VLAN != nil {
		if *in.VLAN < 1 || *in.VLAN > maxVLAN {
			f.add("vlan", fmt.Sprintf("must be a VLAN tag from 1 to %d", maxVLAN))
		}
		c.VLAN = *in.VLAN
	}
	prefix, err := netip.ParsePrefix(strings.TrimSpace(in.CIDR))
	switch {
	case err != nil || !prefix.Addr().Is4():
		f.add("cidr", "must be an IPv4 network in CIDR notation, e.g. 10.0.0.0/24")
	case prefix.Masked() != prefix:
		f.add("cidr", "must be the network's address, "+prefix.Masked().String())
	case prefix.Bits() < minPoolPrefixBits || prefix.Bits() > maxPoolPrefixBits:
		f.add("cidr", fmt.Sprintf("must be from a /%d to a /%d", minPoolPrefixBits, maxPoolPrefixBits))
	default:
		c.CIDR = prefix.String()
	}
	host := func(field, s string) netip.Addr {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || !a.Is4() {
			f.add(field, "must be an IPv4 address")
			return netip.Addr{}
		}
		if c.CIDR != "" && !usableHost(prefix, a) {
			f.add(field, "must be a host address inside cidr "+c.CIDR+" (not its network or broadcast address)")
		}
		return a
	}
	gw, start, end := host("gateway", in.Gateway), host("range_start", in.RangeStart), host("range_end", in.RangeEnd)
	if start.IsValid() && end.IsValid() && start.Compare(end) > 0 {
		f.add("range_end", "must not come before range_start")
	}
	c.Gateway, c.RangeStart, c.RangeEnd = gw.String(), start.String(), end.String()
	if len(in.Nameservers) > maxNameservers {
		f.add("nameservers", fmt.Sprintf("at most %d", maxNameservers))
	}
	for i, ns := range in.Nameservers {
		a, err := netip.ParseAddr(strings.TrimSpace(ns))
		if err != nil || a.Zone() != "" || a.IsUnspecified() {
			f.add(fmt.Sprintf("nameservers[%d]", i), "must be an IPv4 or IPv6 address")
			continue
		}
		c.Nameservers = append(c.Nameservers, a.String())
	}
	if s := strings.TrimSpace(in.IPv6Prefix); s != "" {
		v6, err := netip.ParsePrefix(s)
		switch {
		case err != nil || !v6.Addr().Is6() || v6.Addr().Is4In6():
			f.add("ipv6_prefix", "must be an IPv6 prefix in CIDR notation, e.g. 2001:db8:1::/64")
		case v6.Masked() != v6:
			f.add("ipv6_prefix", "must be the prefix's address, "+v6.Masked().String())
		case c.CIDR != "" && v6.Bits() > 128-(32-prefix.Bits()):
			f.add("ipv6_prefix", fmt.Sprintf("must be at most a /%d: each IPv4 host part of %s becomes an IPv6 host part", 128-(32-prefix.Bits()), c.CIDR))
		default:
			c.IPv6Prefix = v6.String()
		}
	}
	if err := f.err(); err != nil {
		return IPPoolConfig{}, err
	}
	if rangeSize(c) < 1 {
		return IPPoolConfig{}, &ValidationError{Fields: map[string]string{"range_end": "the range holds no address but the gateway"}}
	}
	return c, nil
}

// usableHost: a inside p, neither its network nor its broadcast address.
func usableHost(p netip.Prefix, a netip.Addr) bool {
	if !p.Contains(a) {
		return false
	}
	network := v4Int(p.Masked().Addr())
	broadcast := network | (1<<(32-p.Bits()) - 1)
	return v4Int(a) != network && v4Int(a) != broadcast
}

// CreateIPPool decides a new pool of cluster c: valid on its own, and
// accepted by the cluster (AddIPPool). It returns the pool's events and the
// cluster's, which are appended together.
func CreateIPPool(c *Cluster, id uuid.UUID, in IPPoolInput) (pool, cluster []Event, err error) {
	cfg, err := NewIPPoolConfig(in)
	if err != nil {
		return nil, nil, err
	}
	if !c.Exists() {
		return nil, nil, &ValidationError{Fields: map[string]string{"cluster_id": "no such cluster"}}
	}
	added, err := c.AddIPPool(id, cfg)
	if err != nil {
		return nil, nil, err
	}
	return []Event{&IPPoolCreated{IPPoolConfig: cfg}}, added, nil
}
