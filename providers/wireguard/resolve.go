package wireguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/netext/netext/provider"
)

// bypassResolver returns Go's own resolver with its queries on protected
// sockets, so that looking up an endpoint never goes through the tunnel,
// whatever DNS settings the tunnel has.
func bypassResolver(t *provider.Tunnel) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			return t.BypassDialer().DialContext(ctx, network, address)
		},
	}
}

// resolveAll resolves every peer's endpoint; peers without one get the
// zero AddrPort.
func (s *tunnel) resolveAll(ctx context.Context) ([]netip.AddrPort, error) {
	eps := make([]netip.AddrPort, len(s.cfg.Peers))
	for i, p := range s.cfg.Peers {
		if p.Endpoint == "" {
			continue
		}
		host, port := splitEndpoint(p.Endpoint)
		ap, err := s.resolve(ctx, host, port)
		if err != nil {
			return nil, fmt.Errorf("wireguard: providerConfiguration.peers[%d].endpoint: %w", i, err)
		}
		eps[i] = ap
	}
	return eps, nil
}

// resolve turns host (an IP address or a host name) and port into an
// address. Of several addresses it takes the first of a family that the
// current path has, when the path says.
func (s *tunnel) resolve(ctx context.Context, host string, port uint16) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(a.Unmap(), port), nil
	}
	ips, err := s.res.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("looking up %q: %w", host, err)
	}
	if len(ips) == 0 {
		return netip.AddrPort{}, errors.New("looking up " + host + ": no addresses")
	}
	path := s.t.Path()
	pick := ips[0].Unmap()
	if path.IPv4 != path.IPv6 { // the path has one family only
		for _, ip := range ips {
			if ip.Unmap().Is4() == path.IPv4 {
				pick = ip.Unmap()
				break
			}
		}
	}
	return netip.AddrPortFrom(pick, port), nil
}
