package netcfg

import "github.com/netext/netext/netsettings"

// FromSettings compiles a provider's network settings into the Config of its
// tunnel link: the addresses of both families, included routes (through the
// family's Router when a route names no gateway, as on Ethernet tunnels),
// excluded routes, and the MTU. Without an explicit MTU, a tunnel overhead
// makes the MTU derived from the primary interface; with neither, the MTU is
// [netsettings.DefaultMTU], as the settings model defines.
//
// FromSettings(nil) is nil, which Set takes as "remove everything". The
// settings should have passed Validate; EnforceRoutes is not part of the
// settings and is left for the caller to set from the configuration.
func FromSettings(s *netsettings.Settings) *Config {
	if s == nil {
		return nil
	}
	c := &Config{MTU: s.MTU}
	if c.MTU == 0 {
		if s.TunnelOverheadBytes != nil {
			c.TunnelOverhead = *s.TunnelOverheadBytes
		} else {
			c.MTU = netsettings.DefaultMTU
		}
	}
	for _, ip := range []*netsettings.IPSettings{s.IPv4, s.IPv6} {
		if ip == nil {
			continue
		}
		c.Addresses = append(c.Addresses, ip.Addresses...)
		for _, r := range ip.IncludedRoutes {
			gw := r.Gateway
			if !gw.IsValid() {
				gw = ip.Router
			}
			c.IncludedRoutes = append(c.IncludedRoutes, Route{Dst: r.Destination, Gateway: gw})
		}
		for _, r := range ip.ExcludedRoutes {
			c.ExcludedRoutes = append(c.ExcludedRoutes, r.Destination)
		}
	}
	return c
}
