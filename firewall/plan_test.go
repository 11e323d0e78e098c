package firewall

import (
	"flag"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/netcfg"
	"github.com/netext/netext/netsettings"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(got, string(want)); diff != "" {
		t.Errorf("%s (-got +want):\n%s", path, diff)
	}
}

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// includeAll is a full tunnel with local networks and strict DNS.
func includeAll() *Config {
	return &Config{
		Tunnels: []Tunnel{{
			Interface: "tun0", IncludeAllNetworks: true, ExcludeLocalNetworks: true,
			IPv4: true, IPv6: true, DefaultIPv4: true, DefaultIPv6: true,
			StrictDNS: true, DNSServers: []netip.Addr{addr("198.18.0.53"), addr("2001:db8:7::53")},
		}},
		LocalNetworks: pfx("192.0.2.0/24", "2001:db8:c::/64"),
	}
}

// fullConfig uses every kind of rule but the block of IPv4: an IPv4 full
// tunnel without IPv6 settings with strict DNS, and a split tunnel with
// enforced routes.
func fullConfig() *Config {
	return &Config{
		Tunnels: []Tunnel{{
			Interface: "tun0", ExcludeLocalNetworks: true, IPv4: true, DefaultIPv4: true,
			StrictDNS: true, DNSServers: []netip.Addr{addr("198.18.0.53"), addr("2001:db8:7::53")},
		}, {
			Interface: "tun1", EnforceRoutes: true, ExcludeLocalNetworks: true, IPv4: true,
			IncludedRoutes: pfx("10.0.0.0/8", "10.20.0.0/16"),
			ExcludedRoutes: pfx("10.1.0.0/16"),
		}},
		LocalNetworks: pfx("192.0.2.0/24", "2001:db8:c::/64"),
	}
}

func TestPlanGolden(t *testing.T) {
	v4only := Tunnel{Interface: "tun0", IPv4: true, DefaultIPv4: true}
	enforce := Tunnel{Interface: "tun0", IPv4: true, IPv6: true, EnforceRoutes: true,
		IncludedRoutes: pfx("0.0.0.0/0", "2001:db8::/32"), ExcludedRoutes: pfx("203.0.113.0/24")}
	for _, tt := range []struct {
		name string
		cfg  *Config
	}{
		{"full", fullConfig()},
		{"includeall", includeAll()},
		{"ipv4-only", &Config{Tunnels: []Tunnel{v4only}}},
		{"enforce", &Config{Tunnels: []Tunnel{enforce}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, protects := compile(tt.cfg, netcfg.DefaultMark, netcfg.DefaultMark)
			if !protects {
				t.Error("protects = false")
			}
			golden(t, "testdata/"+tt.name+".plan", p.String())
		})
	}
}

func TestPlanProtectsNothing(t *testing.T) {
	for _, cfg := range []*Config{
		{Tunnels: []Tunnel{{Interface: "tun0", IPv4: true, IPv6: true, DefaultIPv4: true, DefaultIPv6: true}}},
		{Tunnels: []Tunnel{{Interface: "tun0", IPv4: true, IncludedRoutes: pfx("10.0.0.0/8")}}},
		{Tunnels: []Tunnel{{Interface: "tun0", EnforceRoutes: true}}}, // no routes to enforce
	} {
		if _, protects := compile(cfg, 1, 1); protects {
			t.Errorf("compile(%+v) protects, want a plan that rejects nothing", cfg.Tunnels[0])
		}
	}
}

// TestPlanEval checks the verdicts of the compiled table for packets
// leaving outside the tunnels, including Apple's enforceRoutes example.
func TestPlanEval(t *testing.T) {
	const mark = netcfg.DefaultMark
	full := includeAll()
	split := fullConfig()
	noLocal := includeAll()
	noLocal.Tunnels[0].ExcludeLocalNetworks = false
	apple := &Config{
		Tunnels: []Tunnel{{Interface: "utun", IPv4: true, EnforceRoutes: true, ExcludeLocalNetworks: true,
			IncludedRoutes: pfx("10.0.0.0/8")}},
		LocalNetworks: pfx("10.10.0.0/16"),
	}
	appleNoELN := apple.Clone()
	appleNoELN.Tunnels[0].ExcludeLocalNetworks = false
	v4only := &Config{Tunnels: []Tunnel{{Interface: "tun0", IPv4: true, DefaultIPv4: true}}}
	v6only := &Config{Tunnels: []Tunnel{{Interface: "tun0", IPv6: true, DefaultIPv6: true}}}

	udp := func(dst string, port uint16) packet {
		return packet{ifname: "eth0", proto: protoUDP, sport: 40000, dport: port, dst: addr(dst)}
	}
	tcp := func(dst string, port uint16) packet {
		p := udp(dst, port)
		p.proto = protoTCP
		return p
	}
	with := func(p packet, f func(*packet)) packet { f(&p); return p }
	tests := []struct {
		name string
		cfg  *Config
		pk   packet
		want verdictKind
	}{
		{"full: internet udp", full, udp("192.0.2.200", 443), vAccept}, // 192.0.2.0/24 is local
		{"full: internet udp", full, udp("198.51.100.7", 443), vRejectAdmin},
		{"full: internet tcp", full, tcp("198.51.100.7", 443), vRejectTCP},
		{"full: internet ipv6", full, udp("2001:db8:99::1", 443), vRejectAdmin},
		{"full: tunnel", full, with(udp("198.51.100.7", 443), func(p *packet) { p.ifname = "tun0" }), vAccept},
		{"full: marked", full, with(udp("198.51.100.7", 443), func(p *packet) { p.mark = mark | 0x5 }), vAccept},
		{"full: loopback", full, with(udp("127.0.0.1", 53), func(p *packet) { p.ifname = "lo" }), vAccept},
		{"full: dhcp", full, with(udp("255.255.255.255", 67), func(p *packet) { p.sport = 68 }), vAccept},
		{"full: dhcpv6", full, with(udp("ff02::1:2", 547), func(p *packet) { p.sport = 546 }), vAccept},
		{"full: router solicitation", full, packet{ifname: "eth0", proto: protoICMPv6, icmpType: 133, dst: addr("ff02::2")}, vAccept},
		{"full: echo v6", full, packet{ifname: "eth0", proto: protoICMPv6, icmpType: 128, dst: addr("2001:db8:99::1")}, vRejectAdmin},
		{"full: local", full, udp("192.0.2.9", 5353), vAccept},
		{"full: link-local", full, udp("169.254.1.1", 80), vAccept},
		{"full: multicast", full, udp("224.0.0.251", 5353), vAccept},
		{"full: local v6", full, udp("2001:db8:c::9", 80), vAccept},
		{"full: fe80", full, udp("fe80::1", 80), vAccept},
		{"no local: local", noLocal, udp("192.0.2.9", 5353), vRejectAdmin},
		{"no local: fe80", noLocal, udp("fe80::1", 80), vRejectAdmin},
		{"strict dns: other server on lan", full, udp("192.0.2.1", 53), vRejectAdmin},
		{"strict dns: other server through tunnel", full, with(udp("198.51.100.53", 53), func(p *packet) { p.ifname = "tun0" }), vRejectAdmin},
		{"strict dns: DoT", full, with(tcp("198.51.100.53", 853), func(p *packet) { p.ifname = "tun0" }), vRejectTCP},
		{"strict dns: tunnel server", full, with(udp("198.18.0.53", 53), func(p *packet) { p.ifname = "tun0" }), vAccept},
		{"strict dns: tunnel server v6", full, with(tcp("2001:db8:7::53", 853), func(p *packet) { p.ifname = "tun0" }), vAccept},
		{"strict dns: marked", full, with(udp("198.51.100.53", 53), func(p *packet) { p.mark = mark }), vAccept},
		{"apple: included", apple, udp("10.1.2.3", 80), vRejectAdmin},
		{"apple: local wins", apple, udp("10.10.2.3", 80), vAccept},
		{"apple: not included", apple, udp("192.0.2.1", 80), vAccept},
		{"apple without eln: local", appleNoELN, udp("10.10.2.3", 80), vRejectAdmin},
		{"apple: tunnel", apple, with(udp("10.1.2.3", 80), func(p *packet) { p.ifname = "utun" }), vAccept},
		{"enforce: excluded", split, udp("10.1.2.3", 80), vAccept},
		{"enforce: included", split, udp("10.2.2.3", 80), vRejectAdmin},
		{"enforce: included tcp", split, tcp("10.20.2.3", 80), vRejectTCP},
		{"enforce: local", split, udp("192.0.2.3", 80), vAccept},
		{"enforce: not included", split, udp("198.51.100.7", 80), vAccept},
		{"enforce: other tunnel", split, with(udp("10.2.2.3", 80), func(p *packet) { p.ifname = "tun0" }), vAccept},
		{"split: ipv6 blocked by tun0", split, udp("2001:db8:99::1", 80), vRejectAdmin},
		{"split: ipv6 local", split, udp("2001:db8:c::1", 80), vAccept},
		{"v4only: ipv6", v4only, udp("2001:db8:99::1", 80), vRejectAdmin},
		{"v4only: ipv4", v4only, udp("198.51.100.7", 80), vAccept},
		{"v4only: ipv6 link-local", v4only, udp("fe80::1", 80), vRejectAdmin},
		{"v6only: ipv4", v6only, udp("198.51.100.7", 80), vRejectAdmin},
		{"v6only: ipv6", v6only, udp("2001:db8:99::1", 80), vAccept},
		{"v4only: nd", v4only, packet{ifname: "eth0", proto: protoICMPv6, icmpType: 135, dst: addr("fe80::1")}, vAccept},
	}
	for _, tt := range tests {
		p, _ := compile(tt.cfg, mark, mark)
		if got := p.eval(chainOutput, tt.pk); got != tt.want {
			t.Errorf("%s: %+v: got %v, want %v", tt.name, tt.pk, verdict{kind: got}, verdict{kind: tt.want})
		}
	}

	// Inbound.
	p, _ := compile(full, mark, mark)
	for _, tt := range []struct {
		name string
		pk   packet
		want verdictKind
	}{
		{"new from internet", packet{ifname: "eth0", proto: protoTCP, src: addr("198.51.100.7"), dst: addr("192.0.2.2")}, vDrop},
		{"established", packet{ifname: "eth0", proto: protoTCP, ctState: ctEstablished, src: addr("198.51.100.7"), dst: addr("192.0.2.2")}, vAccept},
		{"to protected socket", packet{ifname: "eth0", proto: protoUDP, mark: mark, src: addr("198.51.100.7"), dst: addr("192.0.2.2")}, vAccept},
		{"from lan", packet{ifname: "eth0", proto: protoTCP, src: addr("192.0.2.7"), dst: addr("192.0.2.2")}, vAccept},
		{"from tunnel", packet{ifname: "tun0", proto: protoTCP, src: addr("198.51.100.7"), dst: addr("198.18.0.2")}, vAccept},
		{"dhcp offer", packet{ifname: "eth0", proto: protoUDP, sport: 67, dport: 68, src: addr("192.0.2.1"), dst: addr("255.255.255.255")}, vAccept},
		{"v6 from internet", packet{ifname: "eth0", proto: protoUDP, src: addr("2001:db8:99::1"), dst: addr("2001:db8:c::2")}, vDrop},
	} {
		if got := p.eval(chainInput, tt.pk); got != tt.want {
			t.Errorf("inbound %s: got %v, want %v", tt.name, verdict{kind: got}, verdict{kind: tt.want})
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg  *Config
		want string // substring of the error; empty for none
	}{
		{nil, ""},
		{fullConfig(), ""},
		{&Config{Tunnels: []Tunnel{{}}}, "Tunnels[0].Interface"},
		{&Config{Tunnels: []Tunnel{{Interface: "lo"}}}, "Tunnels[0].Interface"},
		{&Config{Tunnels: []Tunnel{{Interface: "a"}, {Interface: "a"}}}, "Tunnels[1].Interface"},
		{&Config{Tunnels: []Tunnel{{Interface: "a", IncludedRoutes: []netip.Prefix{{}}}}}, "Tunnels[0].IncludedRoutes[0]"},
		{&Config{Tunnels: []Tunnel{{Interface: "a", StrictDNS: true}}}, ""},
		{&Config{Tunnels: []Tunnel{{Interface: "a", DNSServers: []netip.Addr{{}}}}}, "Tunnels[0].DNSServers[0]"},
		{&Config{LocalNetworks: []netip.Prefix{{}}}, "LocalNetworks[0]"},
	} {
		err := tt.cfg.Validate()
		if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate = %v, want an error naming %q", err, tt.want)
		}
	}
}

func TestConfigCloneEqual(t *testing.T) {
	a := fullConfig()
	b := a.Clone()
	if !a.Equal(b) || !b.Equal(a) {
		t.Fatal("clone differs")
	}
	b.Tunnels[1].IncludedRoutes[0] = netip.MustParsePrefix("11.0.0.0/8")
	if a.Equal(b) {
		t.Error("clone shares IncludedRoutes")
	}
	if (*Config)(nil).Equal(a) || !(*Config)(nil).Equal(nil) {
		t.Error("nil Equal")
	}
}

func TestMergePrefixes(t *testing.T) {
	got := mergePrefixes(pfx("10.1.0.0/16", "10.0.0.0/8", "192.0.2.7/24", "192.0.2.0/25", "2001:db8::/32", "2001:db8:1::/48"))
	want := pfx("10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32")
	if diff := cmp.Diff(got, want, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("mergePrefixes (-got +want):\n%s", diff)
	}
}

func TestTunnelFromSettings(t *testing.T) {
	s := &netsettings.Settings{
		TunnelRemoteAddress: "192.0.2.1",
		IPv4: &netsettings.IPSettings{
			Addresses:      pfx("198.18.0.2/24"),
			IncludedRoutes: []netsettings.Route{netsettings.DefaultRoute4()},
			ExcludedRoutes: []netsettings.Route{{Destination: netip.MustParsePrefix("192.0.2.0/24")}},
		},
		DNS: &netsettings.DNS{Servers: []netip.AddrPort{
			netip.MustParseAddrPort("198.18.0.1:53"), netip.MustParseAddrPort("198.18.0.1:853"),
		}},
	}
	got := TunnelFromSettings("netext0", s)
	want := Tunnel{
		Interface: "netext0", IPv4: true, DefaultIPv4: true,
		IncludedRoutes: pfx("0.0.0.0/0"), ExcludedRoutes: pfx("192.0.2.0/24"),
		DNSServers: []netip.Addr{addr("198.18.0.1")},
	}
	if !(&Config{Tunnels: []Tunnel{got}}).Equal(&Config{Tunnels: []Tunnel{want}}) {
		t.Errorf("TunnelFromSettings = %+v, want %+v", got, want)
	}
	// An IPv4 full tunnel without IPv6 settings blocks IPv6.
	p, _ := compile(&Config{Tunnels: []Tunnel{got}}, 1, 1)
	if v := p.eval(chainOutput, packet{ifname: "eth0", proto: protoUDP, dst: addr("2001:db8::1")}); v != vRejectAdmin {
		t.Errorf("IPv6 outside the tunnel: %v, want rejected", verdict{kind: v})
	}
	if got := TunnelFromSettings("netext0", nil); !(&Config{Tunnels: []Tunnel{got}}).Equal(&Config{Tunnels: []Tunnel{{Interface: "netext0"}}}) {
		t.Errorf("TunnelFromSettings(nil) = %+v", got)
	}
}
