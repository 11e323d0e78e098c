package netcfg

import (
	"fmt"
	"net/netip"
	"slices"
)

// Route is a route into the tunnel.
type Route struct {
	Dst netip.Prefix // destination; host bits must be zero
	// Gateway is the next hop on the tunnel link. The zero Addr routes
	// directly via the link.
	Gateway netip.Addr
}

// Config is the desired network configuration of the tunnel link. The zero
// Config brings the link up with a derived MTU and nothing else.
type Config struct {
	// MTU is the link MTU. Zero derives it: the MTU of the primary
	// interface (the one holding the main table's default route; the
	// smaller of the IPv4 and IPv6 ones) minus TunnelOverhead, or 1280 when
	// there is no primary interface. A derived MTU is never below 1280
	// when the configuration uses IPv6, nor below 576.
	MTU int
	// TunnelOverhead is the number of bytes the tunnel protocol adds to
	// each packet; used only when MTU is zero.
	TunnelOverhead int
	// Addresses are the link's addresses with their prefix length, IPv4
	// and IPv6. They are owned by the Manager: Set removes those that are
	// no longer listed, even if they existed before.
	Addresses []netip.Prefix
	// IncludedRoutes go through the tunnel.
	IncludedRoutes []Route
	// ExcludedRoutes stay outside the tunnel (throw routes in our table).
	ExcludedRoutes []netip.Prefix
	// EnforceRoutes makes included routes win over directly connected
	// subnets of other interfaces, as Apple's enforceRoutes does.
	EnforceRoutes bool
}

// Equal reports whether c and o are identical, including the order of the
// lists. A nil Config equals only a nil Config.
func (c *Config) Equal(o *Config) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.MTU == o.MTU &&
		c.TunnelOverhead == o.TunnelOverhead &&
		slices.Equal(c.Addresses, o.Addresses) &&
		slices.Equal(c.IncludedRoutes, o.IncludedRoutes) &&
		slices.Equal(c.ExcludedRoutes, o.ExcludedRoutes) &&
		c.EnforceRoutes == o.EnforceRoutes
}

// Clone returns a deep copy of c; the clone of nil is nil.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	n := *c
	n.Addresses = slices.Clone(c.Addresses)
	n.IncludedRoutes = slices.Clone(c.IncludedRoutes)
	n.ExcludedRoutes = slices.Clone(c.ExcludedRoutes)
	return &n
}

// usesIPv6 reports whether any address or route of c is IPv6.
func (c *Config) usesIPv6() bool {
	for _, a := range c.Addresses {
		if a.Addr().Is6() {
			return true
		}
	}
	for _, r := range c.IncludedRoutes {
		if r.Dst.Addr().Is6() {
			return true
		}
	}
	for _, p := range c.ExcludedRoutes {
		if p.Addr().Is6() {
			return true
		}
	}
	return false
}

// Validate reports the first problem of c as an error naming the field.
func (c *Config) Validate() error {
	if c.MTU != 0 && (c.MTU < 68 || c.MTU > 65535) {
		return fmt.Errorf("netcfg: Config.MTU %d out of range 68-65535", c.MTU)
	}
	if c.MTU != 0 && c.MTU < 1280 && c.usesIPv6() {
		return fmt.Errorf("netcfg: Config.MTU %d below 1280 with IPv6 addresses or routes", c.MTU)
	}
	if c.TunnelOverhead < 0 || c.TunnelOverhead > 65535 {
		return fmt.Errorf("netcfg: Config.TunnelOverhead %d out of range 0-65535", c.TunnelOverhead)
	}
	seenAddr := make(map[netip.Addr]int)
	for i, a := range c.Addresses {
		switch {
		case !a.IsValid():
			return fmt.Errorf("netcfg: Config.Addresses[%d]: invalid prefix", i)
		case a.Addr().Zone() != "":
			return fmt.Errorf("netcfg: Config.Addresses[%d] %s: zones are not allowed", i, a)
		case a.Addr().Is4In6():
			return fmt.Errorf("netcfg: Config.Addresses[%d] %s: IPv4-mapped IPv6 address", i, a)
		case a.Addr().IsUnspecified(), a.Addr().IsMulticast():
			return fmt.Errorf("netcfg: Config.Addresses[%d] %s: not a unicast address", i, a)
		}
		if j, dup := seenAddr[a.Addr()]; dup {
			return fmt.Errorf("netcfg: Config.Addresses[%d] %s: same address as Addresses[%d]", i, a, j)
		}
		seenAddr[a.Addr()] = i
	}
	included := make(map[netip.Prefix]int)
	for i, r := range c.IncludedRoutes {
		if err := checkPrefix(r.Dst); err != nil {
			return fmt.Errorf("netcfg: Config.IncludedRoutes[%d].Dst: %w", i, err)
		}
		if r.Gateway.IsValid() {
			g := r.Gateway
			switch {
			case g.Is4() != r.Dst.Addr().Is4():
				return fmt.Errorf("netcfg: Config.IncludedRoutes[%d].Gateway %s: family differs from Dst %s", i, g, r.Dst)
			case g.IsUnspecified(), g.IsMulticast(), g.Is4In6():
				return fmt.Errorf("netcfg: Config.IncludedRoutes[%d].Gateway %s: not a unicast address", i, g)
			case g.Zone() != "":
				return fmt.Errorf("netcfg: Config.IncludedRoutes[%d].Gateway %s: zones are not allowed", i, g)
			}
		}
		if j, dup := included[r.Dst]; dup {
			return fmt.Errorf("netcfg: Config.IncludedRoutes[%d] %s: duplicate of IncludedRoutes[%d]", i, r.Dst, j)
		}
		included[r.Dst] = i
	}
	excluded := make(map[netip.Prefix]int)
	for i, p := range c.ExcludedRoutes {
		if err := checkPrefix(p); err != nil {
			return fmt.Errorf("netcfg: Config.ExcludedRoutes[%d]: %w", i, err)
		}
		if j, dup := excluded[p]; dup {
			return fmt.Errorf("netcfg: Config.ExcludedRoutes[%d] %s: duplicate of ExcludedRoutes[%d]", i, p, j)
		}
		if j, dup := included[p]; dup {
			return fmt.Errorf("netcfg: Config.ExcludedRoutes[%d] %s: also IncludedRoutes[%d]", i, p, j)
		}
		excluded[p] = i
	}
	return nil
}

func checkPrefix(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return fmt.Errorf("invalid prefix")
	case p.Addr().Zone() != "":
		return fmt.Errorf("%s: zones are not allowed", p)
	case p.Addr().Is4In6():
		return fmt.Errorf("%s: IPv4-mapped IPv6 prefix", p)
	case p.Masked() != p:
		return fmt.Errorf("%s: host bits set (want %s)", p, p.Masked())
	}
	return nil
}
