package netsettings

import (
	"net/netip"
	"slices"
	"strconv"
)

// Settings are the network settings of one tunnel, the equivalent of Apple's
// NEPacketTunnelNetworkSettings (and NEEthernetTunnelNetworkSettings when
// EthernetAddress is set).
//
// Pointer fields are optional: nil means "not configured". The JSON name of
// each field is given in its tag; docs/settings.md describes the encoding.
type Settings struct {
	// TunnelRemoteAddress is the address of the tunnel server: an IP address
	// or a host name. It is shown to users; placeholders such as 127.0.0.1
	// are allowed. Required.
	TunnelRemoteAddress string `json:"tunnelRemoteAddress"`

	// IPv4 holds the tunnel's IPv4 addresses and routes; nil leaves IPv4
	// unconfigured on the tunnel.
	IPv4 *IPSettings `json:"ipv4,omitempty"`

	// IPv6 holds the tunnel's IPv6 addresses and routes; nil leaves IPv6
	// unconfigured on the tunnel.
	IPv6 *IPSettings `json:"ipv6,omitempty"`

	// DNS holds the tunnel's resolver settings; nil leaves DNS alone.
	DNS *DNS `json:"dns,omitempty"`

	// Proxy holds the tunnel's HTTP proxy settings; nil means no proxy.
	Proxy *Proxy `json:"proxy,omitempty"`

	// MTU is the tunnel interface's MTU. Zero means unset. When set it wins
	// over TunnelOverheadBytes.
	MTU int `json:"mtu,omitempty"`

	// TunnelOverheadBytes is the number of bytes the provider adds to each
	// packet. Without an MTU, the tunnel's MTU is the MTU of the primary
	// physical interface minus this value. Nil means unset (see
	// [Settings.EffectiveMTU]); zero is a valid overhead.
	TunnelOverheadBytes *int `json:"tunnelOverheadBytes,omitempty"`

	// EthernetAddress is the MAC address of the interface of an Ethernet
	// (TAP) tunnel, as in NEEthernetTunnelNetworkSettings. The zero MAC means
	// unset: packet (TUN) tunnels leave it unset, and an Ethernet tunnel
	// without one gets an address chosen by the daemon.
	EthernetAddress MAC `json:"ethernetAddress,omitzero"`
}

// IPSettings are the addresses and routes of one address family, the
// equivalent of Apple's NEIPv4Settings and NEIPv6Settings. All addresses
// in it belong to the family of the field that holds it.
type IPSettings struct {
	// Addresses are the addresses assigned to the tunnel interface, each with
	// its prefix length: 10.8.0.2/24 assigns 10.8.0.2 and makes 10.8.0.0/24
	// reachable through the tunnel. The first address is the primary one.
	// At least one is required.
	Addresses []netip.Prefix `json:"addresses,omitempty"`

	// IncludedRoutes are the destinations routed through the tunnel. The
	// default route (0.0.0.0/0 or ::/0, see [DefaultRoute]) sends all
	// traffic not matched by a more specific route through the tunnel.
	IncludedRoutes []Route `json:"includedRoutes,omitempty"`

	// ExcludedRoutes are destinations kept out of the tunnel: traffic to them
	// uses the primary physical interface, as if the tunnel did not exist.
	// Excluded routes take no gateway.
	ExcludedRoutes []Route `json:"excludedRoutes,omitempty"`

	// Router is the next hop for included routes that name no gateway, on
	// Ethernet (TAP) tunnels; it must lie within one of Addresses. Unset (the
	// zero Addr) on packet tunnels, where routes point at the interface.
	// Apple's NEIPv4Settings.router; also accepted for IPv6.
	Router netip.Addr `json:"router,omitzero"`
}

// Route is a destination network, optionally through a gateway. It stands
// for Apple's NEIPv4Route and NEIPv6Route.
type Route struct {
	// Destination is the network address and prefix length; host bits must
	// be zero (10.0.0.0/8, not 10.1.2.3/8).
	Destination netip.Prefix `json:"destination"`

	// Gateway is the next hop; the zero Addr sends the traffic straight to the
	// tunnel interface (or to IPSettings.Router, when that is set).
	Gateway netip.Addr `json:"gateway,omitzero"`
}

// Family is an IP address family.
type Family uint8

// The address families. Their values are the IP version numbers.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// String returns "ipv4" or "ipv6", the JSON name of the family's settings.
func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	}
	return "Family(" + strconv.Itoa(int(f)) + ")"
}

// FamilyOf returns the family of a: IPv4 for IPv4 addresses, IPv6 for all
// other valid addresses (including IPv4-mapped IPv6 ones), and 0 for the zero
// Addr.
func FamilyOf(a netip.Addr) Family {
	switch {
	case a.Is4():
		return IPv4
	case a.Is6():
		return IPv6
	}
	return 0
}

// DefaultRoute returns the default route of family f (0.0.0.0/0 or ::/0).
// It returns the zero Route for any other f.
func DefaultRoute(f Family) Route {
	switch f {
	case IPv4:
		return DefaultRoute4()
	case IPv6:
		return DefaultRoute6()
	}
	return Route{}
}

// DefaultRoute4 returns the IPv4 default route, 0.0.0.0/0.
func DefaultRoute4() Route {
	return Route{Destination: netip.PrefixFrom(netip.IPv4Unspecified(), 0)}
}

// DefaultRoute6 returns the IPv6 default route, ::/0.
func DefaultRoute6() Route {
	return Route{Destination: netip.PrefixFrom(netip.IPv6Unspecified(), 0)}
}

// IsDefault reports whether r is a default route (0.0.0.0/0 or ::/0).
func (r Route) IsDefault() bool {
	return r.Destination.IsValid() && r.Destination.Bits() == 0
}

// Family returns the family of r's destination, or 0 if it is invalid.
func (r Route) Family() Family {
	if !r.Destination.IsValid() {
		return 0
	}
	return FamilyOf(r.Destination.Addr())
}

// IP returns the settings of family f: s.IPv4 or s.IPv6. It returns nil if s
// is nil, the family is not configured, or f is not a family.
func (s *Settings) IP(f Family) *IPSettings {
	if s == nil {
		return nil
	}
	switch f {
	case IPv4:
		return s.IPv4
	case IPv6:
		return s.IPv6
	}
	return nil
}

// IncludesDefaultRoute reports whether the tunnel carries the default route of
// family f, that is whether the family's included routes contain 0.0.0.0/0 or
// ::/0. Splitting the default route into halves (0.0.0.0/1 and 128.0.0.0/1)
// does not count. When this is true, Apple's rules make the tunnel's DNS
// servers the default resolver and ignore DNS.MatchDomains.
func (s *Settings) IncludesDefaultRoute(f Family) bool {
	ip := s.IP(f)
	if ip == nil {
		return false
	}
	for _, r := range ip.IncludedRoutes {
		if r.IsDefault() && r.Family() == f {
			return true
		}
	}
	return false
}

// MTU limits and defaults, in bytes.
const (
	// MinMTU is the smallest MTU accepted: the minimum IPv4 datagram every
	// host must accept.
	MinMTU = 576
	// MinMTU6 is the smallest MTU accepted when IPv6 is configured, the IPv6
	// minimum link MTU.
	MinMTU6 = 1280
	// MaxMTU is the largest MTU accepted.
	MaxMTU = 65535
	// DefaultMTU is the MTU used when neither the MTU nor the tunnel overhead
	// is known: small enough to pass almost any path, and valid for IPv6.
	DefaultMTU = 1280
)

// EffectiveMTU returns the MTU the tunnel interface should get, given the MTU
// of the primary physical interface (zero or less when there is none):
// s.MTU when set; otherwise primaryMTU minus s.TunnelOverheadBytes when both
// are known, raised to the minimum MTU of the configured families if the
// subtraction falls below it; otherwise [DefaultMTU].
func (s *Settings) EffectiveMTU(primaryMTU int) int {
	if s == nil {
		return DefaultMTU
	}
	if s.MTU > 0 {
		return s.MTU
	}
	if s.TunnelOverheadBytes == nil || primaryMTU <= 0 {
		return DefaultMTU
	}
	low := MinMTU
	if s.IPv6 != nil {
		low = MinMTU6
	}
	return min(max(primaryMTU-*s.TunnelOverheadBytes, low), MaxMTU)
}

// Clone returns a deep copy of s: changing the copy never changes s. Nil and
// empty slices stay nil and empty. Clone of nil is nil.
func (s *Settings) Clone() *Settings {
	if s == nil {
		return nil
	}
	c := *s
	c.IPv4 = s.IPv4.Clone()
	c.IPv6 = s.IPv6.Clone()
	c.DNS = s.DNS.Clone()
	c.Proxy = s.Proxy.Clone()
	if s.TunnelOverheadBytes != nil {
		c.TunnelOverheadBytes = new(*s.TunnelOverheadBytes)
	}
	return &c
}

// Clone returns a deep copy of ip, or nil if ip is nil.
func (ip *IPSettings) Clone() *IPSettings {
	if ip == nil {
		return nil
	}
	c := *ip
	c.Addresses = slices.Clone(ip.Addresses)
	c.IncludedRoutes = slices.Clone(ip.IncludedRoutes)
	c.ExcludedRoutes = slices.Clone(ip.ExcludedRoutes)
	return &c
}

// Equal reports whether s and o hold the same settings. Lists compare in
// order. A nil list equals an empty one, except for the match domain lists
// ([DNS.MatchDomains], [Proxy.MatchDomains]), where nil and empty mean
// different things. Nil pointers (an unconfigured family, no DNS, no
// overhead) differ from non-nil ones. Two nil Settings are equal.
func (s *Settings) Equal(o *Settings) bool {
	if s == nil || o == nil {
		return s == o
	}
	return s.TunnelRemoteAddress == o.TunnelRemoteAddress &&
		s.IPv4.Equal(o.IPv4) &&
		s.IPv6.Equal(o.IPv6) &&
		s.DNS.Equal(o.DNS) &&
		s.Proxy.Equal(o.Proxy) &&
		s.MTU == o.MTU &&
		equalPtr(s.TunnelOverheadBytes, o.TunnelOverheadBytes) &&
		s.EthernetAddress == o.EthernetAddress
}

// Equal reports whether ip and o hold the same addresses and routes, in the
// same order. Two nil IPSettings are equal.
func (ip *IPSettings) Equal(o *IPSettings) bool {
	if ip == nil || o == nil {
		return ip == o
	}
	return slices.Equal(ip.Addresses, o.Addresses) &&
		slices.Equal(ip.IncludedRoutes, o.IncludedRoutes) &&
		slices.Equal(ip.ExcludedRoutes, o.ExcludedRoutes) &&
		ip.Router == o.Router
}

// equalPtr reports whether a and b are both nil or point to equal values.
func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// equalDomains compares lists where nil and empty differ.
func equalDomains(a, b []string) bool {
	return (a == nil) == (b == nil) && slices.Equal(a, b)
}
