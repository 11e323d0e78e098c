package session

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/netext/netext/netcfg"
	"github.com/netext/netext/netsettings"
)

func TestRouteAllTraffic(t *testing.T) {
	pfx := netip.MustParsePrefix
	addr := netip.MustParseAddr
	def4, def6 := pfx("0.0.0.0/0"), pfx("::/0")
	for _, tc := range []struct {
		name string
		s    *netsettings.Settings
		want []netcfg.Route
	}{{
		name: "split tunnel of both families",
		s: &netsettings.Settings{
			IPv4: &netsettings.IPSettings{
				Addresses:      []netip.Prefix{pfx("10.9.0.2/24")},
				IncludedRoutes: []netsettings.Route{{Destination: pfx("10.9.0.0/16")}},
				ExcludedRoutes: []netsettings.Route{{Destination: pfx("10.9.9.0/24")}},
			},
			IPv6: &netsettings.IPSettings{Addresses: []netip.Prefix{pfx("fd00:9::2/64")}},
		},
		want: []netcfg.Route{{Dst: pfx("10.9.0.0/16")}, {Dst: def4}, {Dst: def6}},
	}, {
		name: "IPv4 only: IPv6 gets no route",
		s:    &netsettings.Settings{IPv4: &netsettings.IPSettings{Addresses: []netip.Prefix{pfx("10.9.0.2/24")}}},
		want: []netcfg.Route{{Dst: def4}},
	}, {
		name: "the default route already included",
		s: &netsettings.Settings{IPv4: &netsettings.IPSettings{
			Addresses:      []netip.Prefix{pfx("10.9.0.2/24")},
			IncludedRoutes: []netsettings.Route{{Destination: def4, Gateway: addr("10.9.0.1")}},
		}},
		want: []netcfg.Route{{Dst: def4, Gateway: addr("10.9.0.1")}},
	}, {
		name: "through the family's router",
		s: &netsettings.Settings{IPv4: &netsettings.IPSettings{
			Addresses: []netip.Prefix{pfx("10.9.0.2/24")}, Router: addr("10.9.0.1"),
		}},
		want: []netcfg.Route{{Dst: def4, Gateway: addr("10.9.0.1")}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := netcfg.FromSettings(tc.s)
			excluded := cfg.ExcludedRoutes
			routeAllTraffic(cfg, tc.s)
			if diff := cmp.Diff(cfg.IncludedRoutes, tc.want, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("included routes (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(cfg.ExcludedRoutes, excluded, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("excluded routes changed (-got +want):\n%s", diff)
			}
		})
	}
}
