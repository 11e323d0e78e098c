package netcfg

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/netext/netext/netsettings"
)

func TestFromSettings(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	overhead := 80
	zero := 0
	for _, tc := range []struct {
		name string
		in   string // settings JSON
		want *Config
	}{
		{
			name: "nil",
			in:   "",
			want: nil,
		},
		{
			name: "full tunnel, both families, default MTU",
			in: `{"tunnelRemoteAddress": "192.0.2.1",
				"ipv4": {"addresses": ["10.8.0.2/24"], "includedRoutes": [{"destination": "0.0.0.0/0"}],
					"excludedRoutes": [{"destination": "192.0.2.0/24"}]},
				"ipv6": {"addresses": ["fd00::2/64"], "includedRoutes": [{"destination": "::/0"}]}}`,
			want: &Config{
				MTU:            netsettings.DefaultMTU,
				Addresses:      []netip.Prefix{p("10.8.0.2/24"), p("fd00::2/64")},
				IncludedRoutes: []Route{{Dst: p("0.0.0.0/0")}, {Dst: p("::/0")}},
				ExcludedRoutes: []netip.Prefix{p("192.0.2.0/24")},
			},
		},
		{
			// The configuration TestRoutingInNamespace applies and checks
			// by route lookup, as a provider would send it.
			name: "fullTunnel as a settings document",
			in: `{"tunnelRemoteAddress": "192.0.2.1", "tunnelOverheadBytes": 80,
				"ipv4": {"addresses": ["10.64.0.2/32"], "includedRoutes": [{"destination": "0.0.0.0/0"}],
					"excludedRoutes": [{"destination": "203.0.113.7/32"}, {"destination": "198.51.100.0/24"}]},
				"ipv6": {"addresses": ["fd00:64::2/128"], "includedRoutes": [{"destination": "::/0"}],
					"excludedRoutes": [{"destination": "2001:db8:ff::/48"}]}}`,
			want: fullTunnel(),
		},
		{
			name: "explicit MTU wins over overhead",
			in:   `{"tunnelRemoteAddress": "vpn.example.com", "mtu": 1400, "tunnelOverheadBytes": 80}`,
			want: &Config{MTU: 1400},
		},
		{
			name: "overhead derives the MTU",
			in:   `{"tunnelRemoteAddress": "vpn.example.com", "tunnelOverheadBytes": 80}`,
			want: &Config{TunnelOverhead: overhead},
		},
		{
			name: "zero overhead is the primary MTU",
			in:   `{"tunnelRemoteAddress": "vpn.example.com", "tunnelOverheadBytes": 0}`,
			want: &Config{TunnelOverhead: zero},
		},
		{
			name: "gateway and router",
			in: `{"tunnelRemoteAddress": "192.0.2.1", "ethernetAddress": "02:00:00:00:00:01",
				"ipv4": {"addresses": ["10.9.0.2/24"], "router": "10.9.0.1",
					"includedRoutes": [{"destination": "10.0.0.0/8"}, {"destination": "172.16.0.0/12", "gateway": "10.9.0.254"}]}}`,
			want: &Config{
				MTU:       netsettings.DefaultMTU,
				Addresses: []netip.Prefix{p("10.9.0.2/24")},
				IncludedRoutes: []Route{
					{Dst: p("10.0.0.0/8"), Gateway: a("10.9.0.1")},
					{Dst: p("172.16.0.0/12"), Gateway: a("10.9.0.254")},
				},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s *netsettings.Settings
			if tc.in != "" {
				var err error
				if s, err = netsettings.Decode([]byte(tc.in)); err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if err := s.Validate(); err != nil {
					t.Fatalf("Validate: %v", err)
				}
			}
			got := FromSettings(s)
			if diff := cmp.Diff(got, tc.want, cmp.Comparer(func(x, y netip.Prefix) bool { return x == y }), cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
				t.Errorf("FromSettings (-got +want):\n%s", diff)
			}
			if got != nil {
				if err := got.Validate(); err != nil {
					t.Errorf("compiled Config does not validate: %v", err)
				}
			}
		})
	}
}
