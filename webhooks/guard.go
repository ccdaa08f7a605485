package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// ErrForbiddenDestination: the endpoint's address is one a webhook may not
// reach (SSRF protection).
var ErrForbiddenDestination = errors.New("webhooks: destination address not allowed")

// forbidden are the ranges no webhook reaches unless the operator allows
// them: this host, private networks, link-local (cloud metadata services
// at 169.254.169.254 and fd00:ec2::254 are in these), shared address
// space (some clouds' metadata), and addresses that are not one host.
var forbidden = prefixes(
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
	"192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
	"::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "64:ff9b::/96", "2001:db8::/32",
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Guard decides which addresses deliveries may connect to. It checks the
// address actually dialled (net.Dialer.Control), after name resolution,
// so a name that resolves to a public address when the endpoint is saved
// and to a private one when delivering (DNS rebinding) is still refused.
type Guard struct {
	// Allow are ranges the operator lets webhooks reach although they are
	// forbidden (ACCOUNTDB_WEBHOOK_ALLOW_CIDRS).
	Allow []netip.Prefix
}

// Check refuses a forbidden address outside Allow.
func (g Guard) Check(ip netip.Addr) error {
	ip = ip.Unmap()
	for _, p := range g.Allow {
		if p.Contains(ip) {
			return nil
		}
	}
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsMulticast() {
		return fmt.Errorf("%w: %s", ErrForbiddenDestination, ip)
	}
	for _, p := range forbidden {
		if p.Contains(ip) {
			return fmt.Errorf("%w: %s", ErrForbiddenDestination, ip)
		}
	}
	return nil
}

func (g Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrForbiddenDestination, address)
	}
	return g.Check(ap.Addr())
}

// DialContext dials like net.Dialer, refusing forbidden addresses at
// connect time.
func (g Guard) DialContext(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: g.control}
	return d.DialContext
}

// ParseCIDRs reads a comma-separated list of CIDRs.
func ParseCIDRs(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("webhooks: allowed CIDR %q: %w", s, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
