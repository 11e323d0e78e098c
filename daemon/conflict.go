package daemon

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/netext/netext/dns"
	"github.com/netext/netext/internal/dnsname"
	"github.com/netext/netext/netsettings"
)

// claim is what a session's settings take for themselves: the included
// routes and the DNS the other sessions must not have too.
type claim struct {
	routes     []netip.Prefix // included routes, both families
	dnsDefault bool           // the DNS servers become the default resolver
	dnsDomains []string       // the DNS match domains, lower case, without the final dot
}

// claimOf returns the claim of valid settings s. With includeAll (the
// configuration's includeAllNetworks) the session routes all traffic of
// each family it configures into its tunnel (session.routeAllTraffic), so
// its claim has that family's default route too.
func claimOf(s *netsettings.Settings, includeAll bool) *claim {
	c := &claim{}
	for _, f := range []struct {
		family netsettings.Family
		def    netip.Prefix
	}{
		{netsettings.IPv4, netip.PrefixFrom(netip.IPv4Unspecified(), 0)},
		{netsettings.IPv6, netip.PrefixFrom(netip.IPv6Unspecified(), 0)},
	} {
		ip := s.IP(f.family)
		if ip == nil {
			continue
		}
		for _, r := range ip.IncludedRoutes {
			c.routes = append(c.routes, r.Destination.Masked())
		}
		if includeAll && !slices.Contains(c.routes, f.def) {
			c.routes = append(c.routes, f.def)
		}
	}
	// The DNS claim is what the DNS backend gets for the link, by the
	// one rule of dns.FromSettings (Apple's): a default resolver, or the
	// match domains (the search domains when matchDomains is nil).
	if d := dns.FromSettings(s); d != nil {
		c.dnsDefault = d.Default
		c.dnsDomains = d.MatchDomains
	}
	return c
}

// clash describes what a (of the session named aName) and b (of bName)
// both claim, or returns "" when they do not clash. Two included routes
// clash when they overlap: the session whose rules come first would take
// the traffic of both, whichever route is more specific.
func clash(aName string, a *claim, bName string, b *claim) string {
	var what []string
	for _, ra := range a.routes {
		for _, rb := range b.routes {
			if ra.Overlaps(rb) {
				if ra == rb {
					what = append(what, fmt.Sprintf("both route %v", ra))
				} else {
					what = append(what, fmt.Sprintf("route %v of %q overlaps route %v of %q", ra, aName, rb, bName))
				}
			}
		}
	}
	if a.dnsDefault && b.dnsDefault {
		what = append(what, "both want to be the default DNS resolver")
	}
	for _, da := range a.dnsDomains {
		for _, db := range b.dnsDomains {
			if dnsname.Within(da, db) || dnsname.Within(db, da) {
				what = append(what, fmt.Sprintf("DNS domain %q of %q overlaps DNS domain %q of %q", da, aName, db, bName))
			}
		}
	}
	const most = 3
	if len(what) > most {
		what = append(what[:most], fmt.Sprintf("and %d more", len(what)-most))
	}
	return strings.Join(what, "; ")
}
