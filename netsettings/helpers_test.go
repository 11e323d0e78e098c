package netsettings

import (
	"net/netip"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }
func pfxs(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, pfx(s))
	}
	return out
}
func route(dst string) Route { return Route{Destination: pfx(dst)} }
func via(dst, gw string) Route {
	return Route{Destination: pfx(dst), Gateway: addr(gw)}
}
func server(s string) netip.AddrPort {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 0)
	}
	return netip.MustParseAddrPort(s)
}

// fullSettings returns valid settings that set every field but
// proxyAutoConfigurationJavaScript (which excludes the PAC URL). It is the
// example in testdata/full.json and docs/settings.md.
func fullSettings() *Settings {
	return &Settings{
		TunnelRemoteAddress: "vpn.example.com",
		IPv4: &IPSettings{
			Addresses:      pfxs("10.8.0.2/24"),
			IncludedRoutes: []Route{DefaultRoute4(), via("172.16.0.0/12", "10.8.0.1")},
			ExcludedRoutes: []Route{route("192.168.1.0/24")},
			Router:         addr("10.8.0.1"),
		},
		IPv6: &IPSettings{
			Addresses:      pfxs("fd00:8::2/64"),
			IncludedRoutes: []Route{DefaultRoute6()},
			ExcludedRoutes: []Route{route("fd00:1::/48")},
		},
		DNS: &DNS{
			Servers:              []netip.AddrPort{server("10.8.0.1"), server("[fd00:8::1]:8853")},
			SearchDomains:        []string{"corp.example.com"},
			DomainName:           "example.com",
			MatchDomains:         []string{"corp.example.com", "example.net"},
			MatchDomainsNoSearch: true,
			AllowFailover:        true,
			Protocol:             DNSOverTLS,
			ServerName:           "dns.example.com",
		},
		Proxy: &Proxy{
			AutoProxyConfigurationEnabled: true,
			ProxyAutoConfigurationURL:     "https://wpad.example.com/proxy.pac",
			HTTPServer: &ProxyServer{
				Address:                "proxy.example.com",
				Port:                   3128,
				AuthenticationRequired: true,
				Username:               "alice",
				Password:               "s3cret-pw",
			},
			HTTPSServer:            &ProxyServer{Address: "10.8.0.3", Port: 3129},
			ExcludeSimpleHostnames: true,
			ExceptionList:          []string{"*.local", "169.254.0.0/16"},
			MatchDomains:           []string{"example.com"},
		},
		MTU:                 1400,
		TunnelOverheadBytes: new(80),
		EthernetAddress:     MAC{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01},
	}
}
