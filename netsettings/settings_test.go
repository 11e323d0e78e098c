package netsettings

import (
	"net/netip"
	"testing"
)

func TestCloneIndependent(t *testing.T) {
	orig := fullSettings()
	c := orig.Clone()
	if !c.Equal(orig) {
		t.Fatalf("Clone = %v, want %v", c, orig)
	}

	// Change everything reachable from the clone.
	c.TunnelRemoteAddress = "other.example"
	c.IPv4.Addresses[0] = pfx("10.99.0.2/24")
	c.IPv4.IncludedRoutes[0] = route("10.0.0.0/8")
	c.IPv4.ExcludedRoutes[0].Gateway = addr("192.168.1.1")
	c.IPv4.Router = addr("10.99.0.1")
	c.IPv6.Addresses = append(c.IPv6.Addresses, pfx("fd00:9::2/64"))
	c.IPv6.IncludedRoutes[0] = route("2000::/3")
	c.IPv6.ExcludedRoutes[0] = route("fd00:2::/48")
	c.DNS.Servers[0] = server("10.99.0.1")
	c.DNS.SearchDomains[0] = "x.example"
	c.DNS.MatchDomains[0] = "y.example"
	c.DNS.DomainName = "z.example"
	c.Proxy.HTTPServer.Password = "changed"
	c.Proxy.HTTPServer.Port = 1
	c.Proxy.HTTPSServer.Address = "changed.example"
	c.Proxy.ExceptionList[0] = "changed"
	c.Proxy.MatchDomains[0] = "changed.example"
	*c.TunnelOverheadBytes = 1
	c.EthernetAddress[5] = 0xee
	c.MTU = 9000

	if want := fullSettings(); !orig.Equal(want) {
		t.Errorf("changing the clone changed the original:\ngot:  %v\nwant: %v", orig, want)
	}

	// Nil stays nil; empty stays empty.
	var nilSettings *Settings
	if nilSettings.Clone() != nil {
		t.Error("Clone(nil) != nil")
	}
	e := &Settings{DNS: &DNS{MatchDomains: []string{}}, Proxy: &Proxy{MatchDomains: []string{}}}
	ec := e.Clone()
	if ec.DNS.MatchDomains == nil || ec.Proxy.MatchDomains == nil {
		t.Error("Clone turned empty match domains into nil")
	}
	if ec.IPv4 != nil || ec.TunnelOverheadBytes != nil || ec.Proxy.HTTPServer != nil {
		t.Error("Clone turned nil pointers into non-nil ones")
	}
}

func TestEqual(t *testing.T) {
	mod := func(f func(s *Settings)) *Settings {
		s := fullSettings()
		f(s)
		return s
	}
	tests := []struct {
		name string
		a, b *Settings
		want bool
	}{
		{"both nil", nil, nil, true},
		{"nil and empty", nil, &Settings{}, false},
		{"empty and nil", &Settings{}, nil, false},
		{"same", fullSettings(), fullSettings(), true},
		{"clone", fullSettings(), fullSettings().Clone(), true},
		{"remote", fullSettings(), mod(func(s *Settings) { s.TunnelRemoteAddress = "x.example" }), false},
		{"IPv4 removed", fullSettings(), mod(func(s *Settings) { s.IPv4 = nil }), false},
		{"IPv6 removed", fullSettings(), mod(func(s *Settings) { s.IPv6 = nil }), false},
		{"address prefix length", fullSettings(), mod(func(s *Settings) { s.IPv4.Addresses[0] = pfx("10.8.0.2/25") }), false},
		{"address order", mod(func(s *Settings) { s.IPv4.Addresses = pfxs("10.8.0.2/24", "10.9.0.2/24") }),
			mod(func(s *Settings) { s.IPv4.Addresses = pfxs("10.9.0.2/24", "10.8.0.2/24") }), false},
		{"route gateway", fullSettings(), mod(func(s *Settings) { s.IPv4.IncludedRoutes[1].Gateway = netip.Addr{} }), false},
		{"excluded route", fullSettings(), mod(func(s *Settings) { s.IPv6.ExcludedRoutes = nil }), false},
		{"router", fullSettings(), mod(func(s *Settings) { s.IPv4.Router = netip.Addr{} }), false},
		{"nil and empty routes", mod(func(s *Settings) { s.IPv4.ExcludedRoutes = nil }), mod(func(s *Settings) { s.IPv4.ExcludedRoutes = []Route{} }), true},
		{"DNS removed", fullSettings(), mod(func(s *Settings) { s.DNS = nil }), false},
		{"DNS server port", fullSettings(), mod(func(s *Settings) { s.DNS.Servers[1] = server("fd00:8::1") }), false},
		{"nil and empty search domains", mod(func(s *Settings) { s.DNS.SearchDomains = nil }), mod(func(s *Settings) { s.DNS.SearchDomains = []string{} }), true},
		{"nil and empty DNS match domains", mod(func(s *Settings) { s.DNS.MatchDomains = nil }), mod(func(s *Settings) { s.DNS.MatchDomains = []string{} }), false},
		{"empty and root DNS match domains", mod(func(s *Settings) { s.DNS.MatchDomains = []string{} }), mod(func(s *Settings) { s.DNS.MatchDomains = []string{""} }), false},
		{"match domains no search", fullSettings(), mod(func(s *Settings) { s.DNS.MatchDomainsNoSearch = false }), false},
		{"allow failover", fullSettings(), mod(func(s *Settings) { s.DNS.AllowFailover = false }), false},
		{"DNS protocol", fullSettings(), mod(func(s *Settings) { s.DNS.Protocol = DNSCleartext }), false},
		{"server name", fullSettings(), mod(func(s *Settings) { s.DNS.ServerName = "" }), false},
		{"domain name", fullSettings(), mod(func(s *Settings) { s.DNS.DomainName = "" }), false},
		{"server URL", fullSettings(), mod(func(s *Settings) { s.DNS.ServerURL = "https://x.example/" }), false},
		{"proxy removed", fullSettings(), mod(func(s *Settings) { s.Proxy = nil }), false},
		{"proxy password", fullSettings(), mod(func(s *Settings) { s.Proxy.HTTPServer.Password = "other" }), false},
		{"proxy server removed", fullSettings(), mod(func(s *Settings) { s.Proxy.HTTPSServer = nil }), false},
		{"PAC enabled", fullSettings(), mod(func(s *Settings) { s.Proxy.AutoProxyConfigurationEnabled = false }), false},
		{"PAC script", fullSettings(), mod(func(s *Settings) { s.Proxy.ProxyAutoConfigurationJavaScript = "x" }), false},
		{"exclude simple hostnames", fullSettings(), mod(func(s *Settings) { s.Proxy.ExcludeSimpleHostnames = false }), false},
		{"nil and empty exception list", mod(func(s *Settings) { s.Proxy.ExceptionList = nil }), mod(func(s *Settings) { s.Proxy.ExceptionList = []string{} }), true},
		{"nil and empty proxy match domains", mod(func(s *Settings) { s.Proxy.MatchDomains = nil }), mod(func(s *Settings) { s.Proxy.MatchDomains = []string{} }), false},
		{"MTU", fullSettings(), mod(func(s *Settings) { s.MTU = 1420 }), false},
		{"overhead nil and zero", mod(func(s *Settings) { s.TunnelOverheadBytes = nil }), mod(func(s *Settings) { s.TunnelOverheadBytes = new(0) }), false},
		{"overhead same value, other pointer", mod(func(s *Settings) { s.TunnelOverheadBytes = new(60) }), mod(func(s *Settings) { s.TunnelOverheadBytes = new(60) }), true},
		{"MAC", fullSettings(), mod(func(s *Settings) { s.EthernetAddress = MAC{} }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Equal(tt.b); got != tt.want {
				t.Errorf("a.Equal(b) = %v, want %v", got, tt.want)
			}
			if got := tt.b.Equal(tt.a); got != tt.want {
				t.Errorf("b.Equal(a) = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIncludesDefaultRoute(t *testing.T) {
	split := &Settings{IPv4: &IPSettings{IncludedRoutes: []Route{route("0.0.0.0/1"), route("128.0.0.0/1")}}}
	tests := []struct {
		name string
		s    *Settings
		f    Family
		want bool
	}{
		{"nil settings", nil, IPv4, false},
		{"full IPv4", fullSettings(), IPv4, true},
		{"full IPv6", fullSettings(), IPv6, true},
		{"family not configured", &Settings{IPv4: fullSettings().IPv4}, IPv6, false},
		{"split default route", split, IPv4, false},
		{"IPv6 default in ipv4", &Settings{IPv4: &IPSettings{IncludedRoutes: []Route{DefaultRoute6()}}}, IPv4, false},
		{"excluded only", &Settings{IPv4: &IPSettings{ExcludedRoutes: []Route{DefaultRoute4()}}}, IPv4, false},
		{"not a family", fullSettings(), 5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.IncludesDefaultRoute(tt.f); got != tt.want {
				t.Errorf("IncludesDefaultRoute(%v) = %v, want %v", tt.f, got, tt.want)
			}
		})
	}
}

func TestFamilyHelpers(t *testing.T) {
	if got := DefaultRoute(IPv4); got != DefaultRoute4() || got.Destination.String() != "0.0.0.0/0" || !got.IsDefault() || got.Family() != IPv4 {
		t.Errorf("DefaultRoute(IPv4) = %v", got)
	}
	if got := DefaultRoute(IPv6); got != DefaultRoute6() || got.Destination.String() != "::/0" || !got.IsDefault() || got.Family() != IPv6 {
		t.Errorf("DefaultRoute(IPv6) = %v", got)
	}
	if got := DefaultRoute(0); got != (Route{}) || got.IsDefault() || got.Family() != 0 {
		t.Errorf("DefaultRoute(0) = %v", got)
	}
	if route("10.0.0.0/8").IsDefault() {
		t.Error("10.0.0.0/8 is a default route")
	}
	for a, want := range map[string]Family{"10.0.0.1": IPv4, "fd00::1": IPv6, "::ffff:10.0.0.1": IPv6} {
		if got := FamilyOf(addr(a)); got != want {
			t.Errorf("FamilyOf(%s) = %v, want %v", a, got, want)
		}
	}
	if FamilyOf(netip.Addr{}) != 0 {
		t.Error("FamilyOf(zero) != 0")
	}
	if IPv4.String() != "ipv4" || IPv6.String() != "ipv6" || Family(5).String() != "Family(5)" {
		t.Errorf("Family strings: %v %v %v", IPv4, IPv6, Family(5))
	}
	s := fullSettings()
	if s.IP(IPv4) != s.IPv4 || s.IP(IPv6) != s.IPv6 || s.IP(0) != nil {
		t.Error("IP(family) returned the wrong settings")
	}
}

func TestEffectiveMTU(t *testing.T) {
	v4 := &Settings{IPv4: &IPSettings{}}
	v6 := &Settings{IPv6: &IPSettings{}}
	tests := []struct {
		name     string
		s        *Settings
		overhead *int
		mtu      int
		primary  int
		want     int
	}{
		{"nil settings", nil, nil, 0, 1500, DefaultMTU},
		{"MTU wins", v4, new(80), 1400, 1500, 1400},
		{"overhead", v4, new(80), 0, 1500, 1420},
		{"zero overhead", v4, new(0), 0, 9000, 9000},
		{"no overhead", v4, nil, 0, 1500, DefaultMTU},
		{"no primary", v4, new(80), 0, 0, DefaultMTU},
		{"clamped to IPv4 minimum", v4, new(1000), 0, 1500, MinMTU},
		{"clamped to IPv6 minimum", v6, new(300), 0, 1500, MinMTU6},
		{"clamped to maximum", v4, new(0), 0, 70000, MaxMTU},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s.Clone()
			if s != nil {
				s.TunnelOverheadBytes, s.MTU = tt.overhead, tt.mtu
			}
			if got := s.EffectiveMTU(tt.primary); got != tt.want {
				t.Errorf("EffectiveMTU(%d) = %d, want %d", tt.primary, got, tt.want)
			}
		})
	}
}
