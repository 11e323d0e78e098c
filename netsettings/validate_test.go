package netsettings

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// minimal returns small valid settings for the validation table to break.
func minimal() *Settings {
	return &Settings{
		TunnelRemoteAddress: "vpn.example.com",
		IPv4: &IPSettings{
			Addresses:      pfxs("10.8.0.2/24"),
			IncludedRoutes: []Route{DefaultRoute4()},
		},
		DNS: &DNS{Servers: []netip.AddrPort{server("10.8.0.1")}},
	}
}

func withIPv6(s *Settings) *Settings {
	s.IPv6 = &IPSettings{Addresses: pfxs("fd00:8::2/64"), IncludedRoutes: []Route{DefaultRoute6()}}
	return s
}

func withProxy(s *Settings) *Settings {
	s.Proxy = &Proxy{HTTPServer: &ProxyServer{Address: "proxy.example.com", Port: 3128}}
	return s
}

func TestValidateValid(t *testing.T) {
	tests := []struct {
		name string
		s    *Settings
	}{
		{"minimal", minimal()},
		{"full", fullSettings()},
		{"no families", &Settings{TunnelRemoteAddress: "127.0.0.1"}},
		{"remote IPv6 with zone", &Settings{TunnelRemoteAddress: "fe80::1%eth0"}},
		{"remote trailing dot", &Settings{TunnelRemoteAddress: "vpn.example.com."}},
		{"point-to-point /31 and /32", &Settings{TunnelRemoteAddress: "192.0.2.1", IPv4: &IPSettings{Addresses: pfxs("10.8.0.0/31", "10.9.0.0/32")}}},
		{"split default route", &Settings{TunnelRemoteAddress: "192.0.2.1", IPv4: &IPSettings{
			Addresses: pfxs("10.8.0.2/32"), IncludedRoutes: []Route{route("0.0.0.0/1"), route("128.0.0.0/1")}}}},
		{"IPv6 link-local gateway", &Settings{TunnelRemoteAddress: "192.0.2.1", IPv6: &IPSettings{
			Addresses: pfxs("fd00::2/64"), IncludedRoutes: []Route{via("2001:db8::/32", "fe80::1")}}}},
		{"default match domain", func() *Settings {
			s := minimal()
			s.DNS.MatchDomains = []string{"", "corp.example.com"}
			return s
		}()},
		{"empty match domains", func() *Settings {
			s := minimal()
			s.DNS.MatchDomains = []string{}
			return s
		}()},
		{"DoT without server name", func() *Settings {
			s := minimal()
			s.DNS.Protocol = DNSOverTLS
			return s
		}()},
		{"DoH without servers", func() *Settings {
			s := minimal()
			s.DNS = &DNS{Protocol: DNSOverHTTPS, ServerURL: "https://dns.example.net:8443/dns-query"}
			return s
		}()},
		{"service-style search domain", func() *Settings {
			s := minimal()
			s.DNS.SearchDomains = []string{"_msdcs.corp.example.com"}
			return s
		}()},
		{"overhead without MTU", func() *Settings {
			s := minimal()
			s.TunnelOverheadBytes = new(0)
			return s
		}()},
		{"PAC script", &Settings{TunnelRemoteAddress: "a.example", Proxy: &Proxy{
			AutoProxyConfigurationEnabled: true, ProxyAutoConfigurationJavaScript: "function FindProxyForURL(u, h) { return \"DIRECT\"; }"}}},
		{"MTU 576 without IPv6", func() *Settings {
			s := minimal()
			s.MTU = 576
			return s
		}()},
		{"MTU 1280 with IPv6", func() *Settings {
			s := withIPv6(minimal())
			s.MTU = 1280
			return s
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.s.Validate(); err != nil {
				t.Errorf("Validate:\n%v", err)
			}
		})
	}
}

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name string
		base func(*Settings) *Settings // applied to minimal() when set
		mut  func(s *Settings)
		want []Problem
	}{
		{"remote missing", nil, func(s *Settings) { s.TunnelRemoteAddress = "" },
			[]Problem{{Path: "tunnelRemoteAddress", Value: "", Message: "required (an IP address or host name)"}}},
		{"remote empty label", nil, func(s *Settings) { s.TunnelRemoteAddress = "vpn..example.com" },
			[]Problem{{Path: "tunnelRemoteAddress", Value: "vpn..example.com", Message: "neither an IP address nor a valid host name: empty label (two dots in a row, or a leading dot)"}}},
		{"remote with space", nil, func(s *Settings) { s.TunnelRemoteAddress = "vpn example" },
			[]Problem{{Path: "tunnelRemoteAddress", Value: "vpn example", Message: "neither an IP address nor a valid host name: invalid character ' '"}}},
		{"remote URL", nil, func(s *Settings) { s.TunnelRemoteAddress = "https://vpn.example.com" },
			[]Problem{{Path: "tunnelRemoteAddress", Value: "https://vpn.example.com", Message: "neither an IP address nor a valid host name: invalid character ':'"}}},
		{"remote bad IPv4", nil, func(s *Settings) { s.TunnelRemoteAddress = "10.0.0.256" },
			[]Problem{{Path: "tunnelRemoteAddress", Value: "10.0.0.256", Message: "neither an IP address nor a valid host name: all-numeric top-level label; if this is meant as an IP address, it is not a valid one"}}},
		{"remote unspecified", nil, func(s *Settings) { s.TunnelRemoteAddress = "0.0.0.0" },
			[]Problem{{Path: "tunnelRemoteAddress", Value: "0.0.0.0", Message: "the unspecified address is not a remote address"}}},
		{"remote multicast", nil, func(s *Settings) { s.TunnelRemoteAddress = "ff02::1" },
			[]Problem{{Path: "tunnelRemoteAddress", Value: "ff02::1", Message: "a multicast address is not a remote address"}}},
		{"no addresses", withIPv6, func(s *Settings) { s.IPv6.Addresses = nil },
			[]Problem{{Path: "ipv6.addresses", Value: "", Message: "at least one address is required (leave ipv6 out to leave IPv6 unconfigured)"}}},
		{"IPv6 address in ipv4", nil, func(s *Settings) { s.IPv4.Addresses = pfxs("fd00::2/64") },
			[]Problem{{Path: "ipv4.addresses[0]", Value: "fd00::2/64", Message: "not an IPv4 address; IPv6 goes in ipv6"}}},
		{"IPv4 address in ipv6", withIPv6, func(s *Settings) { s.IPv6.Addresses = pfxs("10.9.0.2/24") },
			[]Problem{{Path: "ipv6.addresses[0]", Value: "10.9.0.2/24", Message: "not an IPv6 address; IPv4 goes in ipv4"}}},
		{"IPv4-mapped address", withIPv6, func(s *Settings) { s.IPv6.Addresses = pfxs("::ffff:10.9.0.2/120") },
			[]Problem{{Path: "ipv6.addresses[0]", Value: "::ffff:10.9.0.2/120", Message: "IPv4-mapped IPv6 addresses are not allowed; put the IPv4 address in ipv4"}}},
		{"invalid prefix", nil, func(s *Settings) { s.IPv4.Addresses = []netip.Prefix{{}} },
			[]Problem{{Path: "ipv4.addresses[0]", Value: "", Message: "invalid prefix"}}},
		{"prefix length zero", nil, func(s *Settings) { s.IPv4.Addresses = pfxs("10.8.0.2/0") },
			[]Problem{{Path: "ipv4.addresses[0]", Value: "10.8.0.2/0", Message: "prefix length 0 makes every address on-link; use the address's own prefix length, or /32 with routes"}}},
		{"loopback address", nil, func(s *Settings) { s.IPv4.Addresses = pfxs("127.0.0.2/8") },
			[]Problem{{Path: "ipv4.addresses[0]", Value: "127.0.0.2/8", Message: "a loopback address cannot be an interface address"}}},
		{"IPv6 loopback address", withIPv6, func(s *Settings) { s.IPv6.Addresses = pfxs("::1/128") },
			[]Problem{{Path: "ipv6.addresses[0]", Value: "::1/128", Message: "a loopback address cannot be an interface address"}}},
		{"multicast address", nil, func(s *Settings) { s.IPv4.Addresses = pfxs("224.0.0.5/24") },
			[]Problem{{Path: "ipv4.addresses[0]", Value: "224.0.0.5/24", Message: "a multicast address cannot be an interface address"}}},
		{"unspecified address", nil, func(s *Settings) { s.IPv4.Addresses = pfxs("0.0.0.0/32") },
			[]Problem{{Path: "ipv4.addresses[0]", Value: "0.0.0.0/32", Message: "the unspecified address cannot be an interface address"}}},
		{"network address", nil, func(s *Settings) { s.IPv4.Addresses = pfxs("10.8.0.0/24") },
			[]Problem{{Path: "ipv4.addresses[0]", Value: "10.8.0.0/24", Message: "this is the network address of its prefix; use a host address such as 10.8.0.1"}}},
		{"broadcast address", nil, func(s *Settings) { s.IPv4.Addresses = pfxs("10.8.0.255/24") },
			[]Problem{{Path: "ipv4.addresses[0]", Value: "10.8.0.255/24", Message: "this is the broadcast address of its prefix"}}},
		{"duplicate address", nil, func(s *Settings) { s.IPv4.Addresses = pfxs("10.8.0.2/24", "10.9.0.2/32", "10.8.0.2/32") },
			[]Problem{{Path: "ipv4.addresses[2]", Value: "10.8.0.2/32", Message: "same address as ipv4.addresses[0]"}}},
		{"host bits in route", nil, func(s *Settings) { s.IPv4.IncludedRoutes = []Route{route("10.1.2.3/8")} },
			[]Problem{{Path: "ipv4.includedRoutes[0].destination", Value: "10.1.2.3/8", Message: "host bits are set; did you mean 10.0.0.0/8?"}}},
		{"route of wrong family", nil, func(s *Settings) { s.IPv4.ExcludedRoutes = []Route{route("fd00::/8")} },
			[]Problem{{Path: "ipv4.excludedRoutes[0].destination", Value: "fd00::/8", Message: "not an IPv4 address; IPv6 goes in ipv6"}}},
		{"route without destination", nil, func(s *Settings) { s.IPv4.IncludedRoutes = []Route{{}} },
			[]Problem{{Path: "ipv4.includedRoutes[0].destination", Value: "", Message: "required"}}},
		{"duplicate route", nil, func(s *Settings) {
			s.IPv4.IncludedRoutes = []Route{route("10.0.0.0/8"), DefaultRoute4(), via("10.0.0.0/8", "10.8.0.1")}
		}, []Problem{{Path: "ipv4.includedRoutes[2].destination", Value: "10.0.0.0/8", Message: "same destination as ipv4.includedRoutes[0]"}}},
		{"included and excluded", withIPv6, func(s *Settings) { s.IPv6.ExcludedRoutes = []Route{route("fd00:1::/48"), DefaultRoute6()} },
			[]Problem{{Path: "ipv6.excludedRoutes[1]", Value: "::/0", Message: "also in ipv6.includedRoutes[0]; a destination is either included or excluded"}}},
		{"gateway of wrong family", nil, func(s *Settings) { s.IPv4.IncludedRoutes = []Route{via("10.0.0.0/8", "fd00::1")} },
			[]Problem{{Path: "ipv4.includedRoutes[0].gateway", Value: "fd00::1", Message: "not an IPv4 address; IPv6 goes in ipv6"}}},
		{"multicast gateway", nil, func(s *Settings) { s.IPv4.IncludedRoutes = []Route{via("10.0.0.0/8", "224.0.0.1")} },
			[]Problem{{Path: "ipv4.includedRoutes[0].gateway", Value: "224.0.0.1", Message: "not a unicast address, so not a next hop"}}},
		{"gateway with zone", withIPv6, func(s *Settings) { s.IPv6.IncludedRoutes = []Route{via("2001:db8::/32", "fe80::1%eth0")} },
			[]Problem{{Path: "ipv6.includedRoutes[0].gateway", Value: "fe80::1%eth0", Message: "zones are not allowed; the tunnel interface is implied"}}},
		{"gateway on excluded route", nil, func(s *Settings) { s.IPv4.ExcludedRoutes = []Route{via("192.168.0.0/16", "192.168.0.1")} },
			[]Problem{{Path: "ipv4.excludedRoutes[0].gateway", Value: "192.168.0.1", Message: "excluded routes take no gateway; they use the primary physical interface's"}}},
		{"router off-link", nil, func(s *Settings) { s.IPv4.Router = addr("10.9.0.1") },
			[]Problem{{Path: "ipv4.router", Value: "10.9.0.1", Message: "not within any of ipv4.addresses; the router must be on-link"}}},
		{"router of wrong family", nil, func(s *Settings) { s.IPv4.Router = addr("fd00::1") },
			[]Problem{{Path: "ipv4.router", Value: "fd00::1", Message: "not an IPv4 address; IPv6 goes in ipv6"}}},
		{"MTU below IPv4 minimum", nil, func(s *Settings) { s.MTU = 575 },
			[]Problem{{Path: "mtu", Value: "575", Message: "below 576, the minimum MTU for IPv4"}}},
		{"MTU below IPv6 minimum", withIPv6, func(s *Settings) { s.MTU = 1279 },
			[]Problem{{Path: "mtu", Value: "1279", Message: "below 1280, the minimum MTU for IPv6"}}},
		{"MTU too large", nil, func(s *Settings) { s.MTU = 65536 },
			[]Problem{{Path: "mtu", Value: "65536", Message: "out of range (576 to 65535)"}}},
		{"MTU negative", nil, func(s *Settings) { s.MTU = -1 },
			[]Problem{{Path: "mtu", Value: "-1", Message: "out of range (576 to 65535)"}}},
		{"negative overhead", nil, func(s *Settings) { s.TunnelOverheadBytes = new(-20) },
			[]Problem{{Path: "tunnelOverheadBytes", Value: "-20", Message: "out of range (0 to 65535)"}}},
		{"broadcast MAC", nil, func(s *Settings) { s.EthernetAddress = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} },
			[]Problem{{Path: "ethernetAddress", Value: "ff:ff:ff:ff:ff:ff", Message: "the broadcast address cannot be an interface address"}}},
		{"multicast MAC", nil, func(s *Settings) { s.EthernetAddress = MAC{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01} },
			[]Problem{{Path: "ethernetAddress", Value: "01:00:5e:00:00:01", Message: "a multicast (group) address cannot be an interface address; clear the low bit of the first octet"}}},
		{"no DNS servers", nil, func(s *Settings) { s.DNS.Servers = []netip.AddrPort{} },
			[]Problem{{Path: "dns.servers", Value: "", Message: "at least one server is required"}}},
		{"unspecified DNS server", nil, func(s *Settings) { s.DNS.Servers = []netip.AddrPort{server("0.0.0.0")} },
			[]Problem{{Path: "dns.servers[0]", Value: "0.0.0.0", Message: "the unspecified address is not a server"}}},
		{"multicast DNS server", nil, func(s *Settings) { s.DNS.Servers = []netip.AddrPort{server("224.0.0.251:5353")} },
			[]Problem{{Path: "dns.servers[0]", Value: "224.0.0.251:5353", Message: "a multicast address is not a server"}}},
		{"broadcast DNS server", nil, func(s *Settings) { s.DNS.Servers = []netip.AddrPort{server("255.255.255.255")} },
			[]Problem{{Path: "dns.servers[0]", Value: "255.255.255.255", Message: "the broadcast address is not a server"}}},
		{"DNS server with zone", nil, func(s *Settings) { s.DNS.Servers = []netip.AddrPort{server("fe80::53%eth0")} },
			[]Problem{{Path: "dns.servers[0]", Value: "fe80::53%eth0", Message: "zones are not allowed; servers are reached through the tunnel interface"}}},
		{"invalid DNS server", nil, func(s *Settings) { s.DNS.Servers = []netip.AddrPort{{}} },
			[]Problem{{Path: "dns.servers[0]", Value: "", Message: "invalid address"}}},
		{"duplicate DNS server", nil, func(s *Settings) {
			s.DNS.Servers = []netip.AddrPort{server("10.8.0.1"), server("10.8.0.1:5353"), server("10.8.0.1")}
		}, []Problem{{Path: "dns.servers[2]", Value: "10.8.0.1", Message: "same server as dns.servers[0]"}}},
		{"search domain with hyphen", nil, func(s *Settings) { s.DNS.SearchDomains = []string{"-corp.example.com"} },
			[]Problem{{Path: "dns.searchDomains[0]", Value: "-corp.example.com", Message: `label "-corp" starts or ends with a hyphen`}}},
		{"empty search domain", nil, func(s *Settings) { s.DNS.SearchDomains = []string{""} },
			[]Problem{{Path: "dns.searchDomains[0]", Value: "", Message: "empty domain"}}},
		{"long label", nil, func(s *Settings) { s.DNS.SearchDomains = []string{strings.Repeat("a", 64) + ".example"} },
			[]Problem{{Path: "dns.searchDomains[0]", Value: strings.Repeat("a", 64) + ".example", Message: `label "` + strings.Repeat("a", 64) + `" is longer than 63 characters`}}},
		{"long domain", nil, func(s *Settings) { s.DNS.DomainName = strings.Repeat("abcdefghi.", 26) + "example" },
			[]Problem{{Path: "dns.domainName", Value: strings.Repeat("abcdefghi.", 26) + "example", Message: "longer than 253 characters"}}},
		{"domain with space", nil, func(s *Settings) { s.DNS.DomainName = "exa mple.com" },
			[]Problem{{Path: "dns.domainName", Value: "exa mple.com", Message: "invalid character ' '"}}},
		{"non-ASCII domain", nil, func(s *Settings) { s.DNS.MatchDomains = []string{"bücher.example"} },
			[]Problem{{Path: "dns.matchDomains[0]", Value: "bücher.example", Message: "non-ASCII characters (write internationalized names in their xn-- form)"}}},
		{"duplicate match domain", nil, func(s *Settings) { s.DNS.MatchDomains = []string{"Corp.Example.com", "", "corp.example.com."} },
			[]Problem{{Path: "dns.matchDomains[2]", Value: "corp.example.com.", Message: "same domain as dns.matchDomains[0]"}}},
		{"duplicate default match domain", nil, func(s *Settings) { s.DNS.MatchDomains = []string{"", ""} },
			[]Problem{{Path: "dns.matchDomains[1]", Value: "", Message: "same domain as dns.matchDomains[0]"}}},
		{"DoH without URL", nil, func(s *Settings) { s.DNS.Protocol = DNSOverHTTPS },
			[]Problem{{Path: "dns.serverURL", Value: "", Message: `required with protocol "https"`}}},
		{"DoH over http", nil, func(s *Settings) { s.DNS.Protocol, s.DNS.ServerURL = DNSOverHTTPS, "http://dns.example.net/dns-query" },
			[]Problem{{Path: "dns.serverURL", Value: "http://dns.example.net/dns-query", Message: "want a https URL"}}},
		{"DoH URL without host", nil, func(s *Settings) { s.DNS.Protocol, s.DNS.ServerURL = DNSOverHTTPS, "https:///dns-query" },
			[]Problem{{Path: "dns.serverURL", Value: "https:///dns-query", Message: "the URL has no host"}}},
		{"DoH URL with credentials", nil, func(s *Settings) { s.DNS.Protocol, s.DNS.ServerURL = DNSOverHTTPS, "https://u:p@dns.example.net/" },
			[]Problem{{Path: "dns.serverURL", Message: "credentials in the URL are not allowed"}}},
		{"DoH with server name", nil, func(s *Settings) {
			s.DNS.Protocol, s.DNS.ServerURL, s.DNS.ServerName = DNSOverHTTPS, "https://dns.example.net/dns-query", "dns.example.net"
		}, []Problem{{Path: "dns.serverName", Value: "dns.example.net", Message: `only used with protocol "tls"; with "https" the name comes from serverURL`}}},
		{"DoT with URL", nil, func(s *Settings) { s.DNS.Protocol, s.DNS.ServerURL = DNSOverTLS, "https://dns.example.net/dns-query" },
			[]Problem{{Path: "dns.serverURL", Value: "https://dns.example.net/dns-query", Message: `only used with protocol "https"`}}},
		{"DoT with bad server name", nil, func(s *Settings) { s.DNS.Protocol, s.DNS.ServerName = DNSOverTLS, "dns_1.example.net" },
			[]Problem{{Path: "dns.serverName", Value: "dns_1.example.net", Message: "invalid character '_' in a host name"}}},
		{"cleartext with server name", nil, func(s *Settings) { s.DNS.ServerName = "dns.example.net" },
			[]Problem{{Path: "dns.serverName", Value: "dns.example.net", Message: `only used with protocol "tls"`}}},
		{"unknown DNS protocol", nil, func(s *Settings) { s.DNS.Protocol = 7 },
			[]Problem{{Path: "dns.protocol", Value: "DNSProtocol(7)", Message: "unknown protocol (want cleartext, tls or https)"}}},
		{"proxy port zero", withProxy, func(s *Settings) { s.Proxy.HTTPServer.Port = 0 },
			[]Problem{{Path: "proxy.httpServer.port", Value: "0", Message: "out of range (1 to 65535)"}}},
		{"proxy port too large", withProxy, func(s *Settings) { s.Proxy.HTTPSServer = &ProxyServer{Address: "10.8.0.3", Port: 65536} },
			[]Problem{{Path: "proxy.httpsServer.port", Value: "65536", Message: "out of range (1 to 65535)"}}},
		{"proxy without address", withProxy, func(s *Settings) { s.Proxy.HTTPServer.Address = "" },
			[]Problem{{Path: "proxy.httpServer.address", Value: "", Message: "required (an IP address or host name)"}}},
		{"proxy bad host", withProxy, func(s *Settings) { s.Proxy.HTTPServer.Address = "proxy!.example" },
			[]Problem{{Path: "proxy.httpServer.address", Value: "proxy!.example", Message: "neither an IP address nor a valid host name: invalid character '!'"}}},
		{"proxy auth without user", withProxy, func(s *Settings) {
			s.Proxy.HTTPServer.AuthenticationRequired, s.Proxy.HTTPServer.Password = true, "hunter2"
		}, []Problem{{Path: "proxy.httpServer.username", Value: "", Message: "required when authenticationRequired is true"}}},
		{"PAC enabled without source", withProxy, func(s *Settings) { s.Proxy.AutoProxyConfigurationEnabled = true },
			[]Problem{{Path: "proxy.autoProxyConfigurationEnabled", Value: "", Message: "needs proxyAutoConfigurationURL or proxyAutoConfigurationJavaScript"}}},
		{"PAC URL and script", withProxy, func(s *Settings) {
			s.Proxy.ProxyAutoConfigurationURL, s.Proxy.ProxyAutoConfigurationJavaScript = "http://wpad/wpad.dat", "function FindProxyForURL(){}"
		}, []Problem{{Path: "proxy.proxyAutoConfigurationJavaScript", Value: "", Message: "set together with proxyAutoConfigurationURL; give one of them"}}},
		{"PAC URL scheme", withProxy, func(s *Settings) { s.Proxy.ProxyAutoConfigurationURL = "ftp://wpad.example.com/proxy.pac" },
			[]Problem{{Path: "proxy.proxyAutoConfigurationURL", Value: "ftp://wpad.example.com/proxy.pac", Message: "want a http or https URL"}}},
		{"PAC URL with credentials", withProxy, func(s *Settings) { s.Proxy.ProxyAutoConfigurationURL = "https://bob:secret@wpad.example/proxy.pac" },
			[]Problem{{Path: "proxy.proxyAutoConfigurationURL", Message: "credentials in the URL are not allowed"}}},
		{"PAC URL unparseable", withProxy, func(s *Settings) { s.Proxy.ProxyAutoConfigurationURL = "http://wpad.example/%zz" },
			[]Problem{{Path: "proxy.proxyAutoConfigurationURL", Value: "http://wpad.example/%zz", Message: `not a URL: invalid URL escape "%zz"`}}},
		{"blank PAC script", withProxy, func(s *Settings) { s.Proxy.ProxyAutoConfigurationJavaScript = " \n" },
			[]Problem{{Path: "proxy.proxyAutoConfigurationJavaScript", Value: "", Message: "the script is blank"}}},
		{"exception with space", withProxy, func(s *Settings) { s.Proxy.ExceptionList = []string{"a.example b.example"} },
			[]Problem{{Path: "proxy.exceptionList[0]", Value: "a.example b.example", Message: "one host, domain or pattern per entry (no spaces, commas or semicolons)"}}},
		{"duplicate exception", withProxy, func(s *Settings) { s.Proxy.ExceptionList = []string{"*.local", "*.LOCAL"} },
			[]Problem{{Path: "proxy.exceptionList[1]", Value: "*.LOCAL", Message: "same pattern as proxy.exceptionList[0]"}}},
		{"empty proxy match domain", withProxy, func(s *Settings) { s.Proxy.MatchDomains = []string{""} },
			[]Problem{{Path: "proxy.matchDomains[0]", Value: "", Message: "empty domain"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := minimal()
			if tt.base != nil {
				s = tt.base(minimal())
			}
			if err := s.Validate(); err != nil {
				t.Fatalf("base settings invalid: %v", err)
			}
			tt.mut(s)
			err := s.Validate()
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Validate = %v (%T), want a *ValidationError", err, err)
			}
			if diff := cmp.Diff(verr.Problems, tt.want); diff != "" {
				t.Errorf("problems (-got +want):\n%s", diff)
			}
		})
	}
}

// TestValidateManyProblems checks that every problem is reported at once,
// in field order, one per line.
func TestValidateManyProblems(t *testing.T) {
	s := withIPv6(fullSettings())
	s.TunnelRemoteAddress = ""
	s.IPv4.Addresses = append(s.IPv4.Addresses, pfx("10.8.0.2/32"))
	s.IPv4.IncludedRoutes[1].Destination = pfx("172.16.0.1/12")
	s.IPv6.IncludedRoutes = nil
	s.IPv6.ExcludedRoutes = []Route{via("fd00:1::/48", "fd00:8::1")}
	s.DNS.Protocol = DNSOverHTTPS
	s.Proxy.HTTPServer.Port = 0
	s.MTU = 1000
	err := s.Validate()
	want := strings.Join([]string{
		`tunnelRemoteAddress: required (an IP address or host name)`,
		`ipv4.addresses[1]: "10.8.0.2/32": same address as ipv4.addresses[0]`,
		`ipv4.includedRoutes[1].destination: "172.16.0.1/12": host bits are set; did you mean 172.16.0.0/12?`,
		`ipv6.excludedRoutes[0].gateway: "fd00:8::1": excluded routes take no gateway; they use the primary physical interface's`,
		`dns.serverName: "dns.example.com": only used with protocol "tls"; with "https" the name comes from serverURL`,
		`dns.serverURL: required with protocol "https"`,
		`proxy.httpServer.port: "0": out of range (1 to 65535)`,
		`mtu: "1000": below 1280, the minimum MTU for IPv6`,
	}, "\n")
	if err == nil {
		t.Fatal("Validate succeeded")
	}
	if diff := cmp.Diff(err.Error(), want); diff != "" {
		t.Errorf("error (-got +want):\n%s", diff)
	}
}

func TestValidateNil(t *testing.T) {
	var s *Settings
	if err := s.Validate(); err == nil || err.Error() != "settings are nil" {
		t.Errorf("Validate(nil) = %v, want \"settings are nil\"", err)
	}
}

// TestValidateLarge checks that validating many routes stays linear (a
// quadratic check would time out here rather than fail an assertion).
func TestValidateLarge(t *testing.T) {
	s := largeSettings(100_000)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

// largeSettings returns valid settings with n included IPv4 routes.
func largeSettings(n int) *Settings {
	s := minimal()
	s.IPv4.IncludedRoutes = make([]Route, 0, n)
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if a == netip.AddrFrom4([4]byte{10, 0, 0, 0}) {
			a = netip.AddrFrom4([4]byte{11, 0, 0, 0})
		}
		s.IPv4.IncludedRoutes = append(s.IPv4.IncludedRoutes, Route{Destination: netip.PrefixFrom(a, 32)})
	}
	return s
}

func BenchmarkDecodeValidate100kRoutes(b *testing.B) {
	data, err := largeSettings(100_000).Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s, err := Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode100kRoutes(b *testing.B) {
	s := largeSettings(100_000)
	for b.Loop() {
		if _, err := s.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}
