package api

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP is the address of the client that made r: the direct peer, or,
// when the peer is a trusted proxy, the right-most X-Forwarded-For entry that
// is not itself a trusted proxy. The router resolves it once per request;
// outside the router it is the direct peer. The zero Addr means unknown.
func ClientIP(r *http.Request) netip.Addr {
	if a, ok := r.Context().Value(clientIPKey).(netip.Addr); ok {
		return a
	}
	return peerAddr(r)
}

func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	a, err := netip.ParseAddr(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

type proxySet []netip.Prefix

func (ps proxySet) contains(a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// resolve walks X-Forwarded-For right to left. Every hop right of the result
// was appended by a trusted proxy; anything left of it was written by the
// client and may be forged, so it is never read. A malformed entry stops the
// walk at the last address a trusted proxy vouched for.
func (ps proxySet) resolve(r *http.Request) netip.Addr {
	addr := peerAddr(r)
	if !addr.IsValid() || !ps.contains(addr) {
		return addr
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr
		}
		addr = hop.Unmap().WithZone("")
		if !ps.contains(addr) {
			return addr
		}
	}
	return addr
}

func clientIP(trusted []netip.Prefix) func(http.Handler) http.Handler {
	ps := make(proxySet, 0, len(trusted))
	for _, p := range trusted {
		if p.IsValid() {
			ps = append(ps, p.Masked())
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := context.WithValue(r.Context(), clientIPKey, ps.resolve(r))
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}
