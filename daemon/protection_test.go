package daemon

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/firewall"
	"github.com/netext/netext/netsettings"
	"github.com/netext/netext/store"
)

func TestProtectionRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "protection.json")
	f := protectionFile{Version: protectionVersion, BootID: "boot-1", Guards: []guard{{
		Name: "office",
		Hold: true,
		Tunnel: firewall.Tunnel{
			Interface: "netext0", IncludeAllNetworks: true, IPv4: true, DefaultIPv4: true,
			IncludedRoutes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")},
			DNSServers:     []netip.Addr{netip.MustParseAddr("10.99.0.1")},
		},
	}}}
	if err := writeProtection(path, f); err != nil {
		t.Fatal(err)
	}
	got, err := readProtection(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, f, cmp.AllowUnexported(guard{}), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("record read back (-got +want):\n%s", diff)
	}
	if err := writeProtection(path, protectionFile{Version: protectionVersion}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("record without guards still there: %v", err)
	}
	if got, err := readProtection(path); err != nil || len(got.Guards) != 0 {
		t.Errorf("missing record: %+v, %v; want an empty one", got, err)
	}

	for name, data := range map[string]string{
		"not JSON":     "{",
		"version":      `{"version": 2}`,
		"no interface": `{"version": 1, "guards": [{"name": "a", "hold": true, "tunnel": {}}]}`,
		"not held":     `{"version": 1, "guards": [{"name": "a", "tunnel": {"Interface": "netext0"}}]}`,
	} {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := readProtection(path); err == nil {
			t.Errorf("%s: read without error", name)
		}
	}
}

func TestStillHeld(t *testing.T) {
	confs := map[string]store.Configuration{
		"killswitch": {Name: "killswitch", Enabled: true, IncludeAllNetworks: true},
		"enforce":    {Name: "enforce", Enabled: true, EnforceRoutes: true},
		"disabled":   {Name: "disabled", IncludeAllNetworks: true},
		"plain":      {Name: "plain", Enabled: true},
	}
	get := func(name string) (store.Configuration, error) {
		c, ok := confs[name]
		if !ok {
			return c, store.ErrNotFound
		}
		return c, nil
	}
	var f protectionFile
	f.Version, f.BootID = protectionVersion, "boot-1"
	for i, name := range []string{"killswitch", "enforce", "disabled", "plain", "gone"} {
		f.Guards = append(f.Guards, guard{Name: name, Hold: true, Tunnel: firewall.Tunnel{Interface: "netext" + string(rune('0'+i))}})
	}
	names := func(f protectionFile) []string {
		var out []string
		for _, g := range f.Guards {
			out = append(out, g.Name)
		}
		return out
	}
	if diff := cmp.Diff(names(stillHeld(f, "boot-1", get, testLogger(t))), []string{"killswitch", "enforce"}); diff != "" {
		t.Errorf("held on the same boot (-got +want):\n%s", diff)
	}
	if got := names(stillHeld(f, "boot-2", get, testLogger(t))); len(got) != 0 {
		t.Errorf("held after a restart of the system: %v, want none", got)
	}
}

func TestGuardStrictDNS(t *testing.T) {
	pfx := netip.MustParsePrefix
	server := netip.MustParseAddrPort("10.99.0.1:53")
	ipv4 := func(routes ...string) *netsettings.IPSettings {
		ip := &netsettings.IPSettings{Addresses: []netip.Prefix{pfx("10.99.0.2/24")}}
		for _, r := range routes {
			ip.IncludedRoutes = append(ip.IncludedRoutes, netsettings.Route{Destination: pfx(r)})
		}
		return ip
	}
	for _, tc := range []struct {
		name   string
		strict bool
		s      *netsettings.Settings
		want   bool
	}{
		{"full tunnel with DNS", true, &netsettings.Settings{IPv4: ipv4("0.0.0.0/0"), DNS: &netsettings.DNS{Servers: []netip.AddrPort{server}}}, true},
		{"not asked for", false, &netsettings.Settings{IPv4: ipv4("0.0.0.0/0"), DNS: &netsettings.DNS{Servers: []netip.AddrPort{server}}}, false},
		{"empty match domain", true, &netsettings.Settings{IPv4: ipv4("10.99.0.0/24"), DNS: &netsettings.DNS{Servers: []netip.AddrPort{server}, MatchDomains: []string{""}}}, true},
		{"match domains only", true, &netsettings.Settings{IPv4: ipv4("10.99.0.0/24"), DNS: &netsettings.DNS{Servers: []netip.AddrPort{server}, MatchDomains: []string{"corp.example"}}}, false},
		{"no DNS", true, &netsettings.Settings{IPv4: ipv4("0.0.0.0/0")}, false},
		{"no settings", true, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gp := (&protection{}).policy(store.Configuration{Name: "office", StrictDNS: tc.strict}).(*guardPolicy)
			got := gp.tunnelOf("netext0", tc.s)
			if got.StrictDNS != tc.want {
				t.Errorf("StrictDNS = %v, want %v", got.StrictDNS, tc.want)
			}
			if tc.want && !slices.Equal(got.DNSServers, []netip.Addr{server.Addr()}) {
				t.Errorf("DNSServers = %v, want %v", got.DNSServers, server.Addr())
			}
		})
	}
}
