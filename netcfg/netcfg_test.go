package netcfg

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

const (
	ethIndex = 2
	tunIndex = 3
)

// fakeLAN returns a fake kernel with a LAN on eth0 (IPv4 and IPv6, default
// routes through it) and a tunnel link tun0 that is down.
func fakeLAN() *fakeOS {
	f := newFakeOS()
	f.addLink(ethIndex, "eth0", 1500, true)
	f.addLink(tunIndex, "tun0", 1500, false)
	for _, r := range []kRoute{
		{Dst: pfx("192.168.1.0/24"), Protocol: rtprotKernel, LinkIndex: ethIndex},
		{Dst: pfx("0.0.0.0/0"), Protocol: 16, LinkIndex: ethIndex, Gateway: addr("192.168.1.1")},
		{Dst: pfx("2001:db8:1::/64"), Protocol: rtprotKernel, LinkIndex: ethIndex, Metric: 256},
		{Dst: pfx("fe80::/64"), Protocol: rtprotKernel, LinkIndex: ethIndex, Metric: 256},
		{Dst: pfx("::/0"), Protocol: 9, LinkIndex: ethIndex, Gateway: addr("fe80::1"), Metric: 1024},
	} {
		r.Table, r.Type = tableMain, rtnUnicast
		f.addKernelRoute(r)
	}
	f.rules = []kRule{
		{Family: 4, Priority: 0, Action: frActToTable, Table: tableLocal, Protocol: rtprotKernel},
		{Family: 4, Priority: 32766, Action: frActToTable, Table: tableMain, Protocol: rtprotKernel},
		{Family: 4, Priority: 32767, Action: frActToTable, Table: tableDefault, Protocol: rtprotKernel},
		{Family: 6, Priority: 0, Action: frActToTable, Table: tableLocal, Protocol: rtprotKernel},
		{Family: 6, Priority: 32766, Action: frActToTable, Table: tableMain, Protocol: rtprotKernel},
	}
	return f
}

func newFakeManager(t *testing.T, f *fakeOS, opts Options) *Manager {
	t.Helper()
	o, err := opts.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	m, err := newManager("tun0", o, f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fullTunnel is a typical configuration: both families, default routes,
// a few exclusions.
func fullTunnel() *Config {
	return &Config{
		TunnelOverhead: 80,
		Addresses:      []netip.Prefix{pfx("10.64.0.2/32"), pfx("fd00:64::2/128")},
		IncludedRoutes: []Route{{Dst: pfx("0.0.0.0/0")}, {Dst: pfx("::/0")}},
		ExcludedRoutes: []netip.Prefix{pfx("203.0.113.7/32"), pfx("198.51.100.0/24"), pfx("2001:db8:ff::/48")},
	}
}

func TestSetGolden(t *testing.T) {
	const ladder4 = `ipv4 rule 7300: from all fwmark 0x10000000/0x10000000 lookup main proto 78
ipv4 rule 7301: from all fwmark 0x10000000/0x10000000 lookup default proto 78
ipv4 rule 7302: from all fwmark 0x10000000/0x10000000 unreachable proto 78
ipv4 rule 7303: from all lookup 7373 proto 78
`
	const ladder6 = `ipv6 rule 7300: from all fwmark 0x10000000/0x10000000 lookup main proto 78
ipv6 rule 7301: from all fwmark 0x10000000/0x10000000 lookup default proto 78
ipv6 rule 7302: from all fwmark 0x10000000/0x10000000 unreachable proto 78
ipv6 rule 7303: from all lookup 7373 proto 78
`
	tests := []struct {
		name string
		cfg  *Config
		want string // lines added to fakeLAN's rendering; tun0's line separately
		tun  string
	}{
		{
			name: "full tunnel",
			cfg:  fullTunnel(),
			tun:  "link #3 tun0 mtu 1420 up",
			want: `addr 10.64.0.2/32 dev tun0
addr fd00:64::2/128 dev tun0
route 0.0.0.0/0 dev #3 table 7373 proto 78
route ::/0 dev #3 table 7373 proto 78
route throw 192.168.1.0/24 table 7373 proto 78
route throw 198.51.100.0/24 table 7373 proto 78
route throw 2001:db8:1::/64 table 7373 proto 78
route throw 2001:db8:ff::/48 table 7373 proto 78
route throw 203.0.113.7/32 table 7373 proto 78
route throw fe80::/64 table 7373 proto 78
` + ladder4 + ladder6,
		},
		{
			name: "IPv4 split tunnel leaves IPv6 alone",
			cfg: &Config{
				MTU:            1400,
				Addresses:      []netip.Prefix{pfx("10.64.0.2/24")},
				IncludedRoutes: []Route{{Dst: pfx("10.0.0.0/8")}, {Dst: pfx("192.168.0.0/16"), Gateway: addr("10.64.0.1")}},
			},
			tun: "link #3 tun0 mtu 1400 up",
			want: `addr 10.64.0.2/24 dev tun0
route 10.0.0.0/8 dev #3 table 7373 proto 78
route 192.168.0.0/16 via 10.64.0.1 dev #3 table 7373 proto 78
route throw 192.168.1.0/24 table 7373 proto 78
` + ladder4,
		},
		{
			name: "enforced routes make no LAN exception",
			cfg: &Config{
				Addresses:      []netip.Prefix{pfx("10.64.0.2/32")},
				IncludedRoutes: []Route{{Dst: pfx("0.0.0.0/0")}},
				EnforceRoutes:  true,
			},
			tun: "link #3 tun0 mtu 1500 up",
			want: `addr 10.64.0.2/32 dev tun0
route 0.0.0.0/0 dev #3 table 7373 proto 78
` + ladder4,
		},
		{
			name: "addresses only, no rules",
			cfg:  &Config{Addresses: []netip.Prefix{pfx("10.64.0.2/24"), pfx("fd00::2/64")}},
			tun:  "link #3 tun0 mtu 1500 up",
			want: "addr 10.64.0.2/24 dev tun0\naddr fd00::2/64 dev tun0\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fakeLAN()
			orig := f.String()
			m := newFakeManager(t, f, Options{})
			if err := m.Set(tt.cfg); err != nil {
				t.Fatal(err)
			}
			want := strings.Replace(orig, "link #3 tun0 mtu 1500 down", tt.tun, 1) + tt.want
			if diff := cmp.Diff(sortLines(f.String()), sortLines(want)); diff != "" {
				t.Errorf("state (-got +want):\n%s", diff)
			}
			before := m.Stats()
			if err := m.Set(tt.cfg.Clone()); err != nil {
				t.Fatal(err)
			}
			if d := m.Stats().Sub(before); d.Changes() != 0 {
				t.Errorf("re-applying the same config made changes: %+v", d)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(f.String(), orig); diff != "" {
				t.Errorf("after Close (-got +want):\n%s", diff)
			}
		})
	}
}

func sortLines(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(l)
	return strings.Join(l, "\n") + "\n"
}

func TestSetOnlyDiff(t *testing.T) {
	f := fakeLAN()
	m := newFakeManager(t, f, Options{})
	a := fullTunnel()
	if err := m.Set(a); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		change func(c *Config)
		want   Stats
	}{
		{"same", func(c *Config) {}, Stats{}},
		{"one route replaced by another", func(c *Config) { c.ExcludedRoutes[0] = pfx("203.0.113.8/32") },
			Stats{RouteAdds: 1, RouteDels: 1}},
		{"route gains a gateway", func(c *Config) {
			c.IncludedRoutes = append(c.IncludedRoutes, Route{Dst: pfx("10.1.0.0/16")})
		}, Stats{RouteAdds: 1}},
		{"gateway changes in place", func(c *Config) { c.IncludedRoutes[2].Gateway = addr("10.64.0.1") },
			Stats{RouteAdds: 1}},
		{"MTU", func(c *Config) { c.MTU = 1300 }, Stats{LinkChanges: 1}},
		{"address swap", func(c *Config) { c.Addresses[0] = pfx("10.64.0.3/32") }, Stats{AddrAdds: 1, AddrDels: 1}},
		{"IPv6 prefix length", func(c *Config) { c.Addresses[1] = pfx("fd00:64::2/64") }, Stats{AddrAdds: 1, AddrDels: 1}},
		{"drop IPv6 routes", func(c *Config) {
			c.IncludedRoutes = c.IncludedRoutes[:1]
			c.IncludedRoutes[0] = Route{Dst: pfx("0.0.0.0/0")}
			c.ExcludedRoutes = c.ExcludedRoutes[:2]
		}, Stats{RouteDels: 5, RuleDels: 4}},
	}
	cfg := a.Clone()
	for _, s := range steps {
		s.change(cfg)
		before := m.Stats()
		if err := m.Set(cfg); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if diff := cmp.Diff(m.Stats().Sub(before), s.want); diff != "" {
			t.Errorf("%s: changes (-got +want):\n%s", s.name, diff)
		}
	}
}

func TestNetworkChangeRecomputesExceptions(t *testing.T) {
	f := fakeLAN()
	m := newFakeManager(t, f, Options{})
	if err := m.Set(fullTunnel()); err != nil {
		t.Fatal(err)
	}
	// A new LAN appears on eth0 and the uplink's MTU shrinks.
	f.addKernelRoute(kRoute{Table: tableMain, Dst: pfx("172.16.5.0/24"), Type: rtnUnicast, Protocol: rtprotKernel, LinkIndex: ethIndex})
	f.links[ethIndex].MTU = 1400
	before := m.Stats()
	if err := m.Set(fullTunnel()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m.Stats().Sub(before), Stats{RouteAdds: 1, LinkChanges: 1}); diff != "" {
		t.Errorf("changes (-got +want):\n%s", diff)
	}
	if _, ok := f.routes[fakeRouteKey{DefaultTable, pfx("172.16.5.0/24")}]; !ok {
		t.Errorf("no throw route for the new LAN:\n%s", f)
	}
	if got := f.links[tunIndex].MTU; got != 1400-80 {
		t.Errorf("MTU = %d, want %d", got, 1400-80)
	}
}

func TestLinkSetDownByOthers(t *testing.T) {
	f := fakeLAN()
	m := newFakeManager(t, f, Options{})
	cfg := fullTunnel()
	if err := m.Set(cfg); err != nil {
		t.Fatal(err)
	}
	f.LinkSetUp(tunIndex, false) // flushes the routes through the link
	if err := m.Set(cfg); err != nil {
		t.Fatal(err)
	}
	checkFakeState(t, f, m, cfg)
}

func TestDeriveMTU(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		mtu4, mtu6 int
		want       int
	}{
		{"explicit", Config{MTU: 1380, TunnelOverhead: 80}, 1500, 1500, 1380},
		{"derived", Config{TunnelOverhead: 80}, 1500, 0, 1420},
		{"smaller primary", Config{TunnelOverhead: 60}, 1500, 1450, 1390},
		{"no primary", Config{TunnelOverhead: 80}, 0, 0, 1280},
		{"IPv6 floor", Config{TunnelOverhead: 300, Addresses: []netip.Prefix{pfx("fd00::1/64")}}, 1500, 0, 1280},
		{"IPv4 floor", Config{TunnelOverhead: 1400}, 1500, 0, 576},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deriveMTU(&tt.cfg, tt.mtu4, tt.mtu6); got != tt.want {
				t.Errorf("deriveMTU = %d, want %d", got, tt.want)
			}
		})
	}
}

// transitionConfigs is a dozen configurations exercising every kind of
// change; transitions between them run in random order.
func transitionConfigs() []*Config {
	return []*Config{
		nil,
		{},
		fullTunnel(),
		{MTU: 1400, Addresses: []netip.Prefix{pfx("10.64.0.2/24")}, IncludedRoutes: []Route{{Dst: pfx("10.0.0.0/8")}}},
		{Addresses: []netip.Prefix{pfx("10.64.0.2/24")}, IncludedRoutes: []Route{{Dst: pfx("10.0.0.0/8"), Gateway: addr("10.64.0.1")}}},
		{Addresses: []netip.Prefix{pfx("fd00:64::2/64")}, IncludedRoutes: []Route{{Dst: pfx("::/0")}}, ExcludedRoutes: []netip.Prefix{pfx("2001:db8:ff::/48")}},
		{Addresses: []netip.Prefix{pfx("fd00:64::2/96")}, IncludedRoutes: []Route{{Dst: pfx("2000::/3")}}, EnforceRoutes: true},
		{Addresses: []netip.Prefix{pfx("10.64.0.2/32"), pfx("fd00:64::2/128")}, IncludedRoutes: []Route{{Dst: pfx("0.0.0.0/0")}, {Dst: pfx("::/0")}}, EnforceRoutes: true},
		{MTU: 1280, Addresses: []netip.Prefix{pfx("10.64.0.3/32")}, IncludedRoutes: []Route{{Dst: pfx("192.168.1.128/25")}, {Dst: pfx("192.168.0.0/16")}}},
		{TunnelOverhead: 200, Addresses: []netip.Prefix{pfx("10.64.0.2/32")}, IncludedRoutes: []Route{{Dst: pfx("0.0.0.0/0")}}, ExcludedRoutes: []netip.Prefix{pfx("10.0.0.0/8"), pfx("172.16.0.0/12")}},
		{Addresses: []netip.Prefix{pfx("10.99.0.1/16")}, ExcludedRoutes: []netip.Prefix{pfx("10.0.0.0/8")}},
		{MTU: 9000, IncludedRoutes: []Route{{Dst: pfx("198.18.0.0/15")}, {Dst: pfx("fd00:1::/64"), Gateway: addr("fe80::1")}}},
	}
}

// wantFake renders what f should hold for cfg on top of base.
func checkFakeState(t *testing.T, f *fakeOS, m *Manager, cfg *Config) {
	t.Helper()
	main, _ := f.RouteList(0, tableMain)
	want := wantState(cfg, &m.opts, tunIndex, main)
	got := newState()
	for a := range f.addrs[tunIndex] {
		got.addrs[a] = true
	}
	routes, _ := f.RouteList(0, m.opts.Table)
	for _, r := range routes {
		got.routes[r.Dst] = r
	}
	rules, _ := f.RuleList(0)
	for _, r := range rules {
		if m.opts.ownsPriority(r.Priority) {
			got.rules[r.key()] = r
		}
	}
	if diff := cmp.Diff(got.String(), want.String()); diff != "" {
		t.Errorf("state (-got +want):\n%s", diff)
	}
	if cfg != nil && !f.links[tunIndex].Up {
		t.Errorf("link is down")
	}
}

func TestRandomTransitionsFake(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	cfgs := transitionConfigs()
	f := fakeLAN()
	orig := f.String()
	m := newFakeManager(t, f, Options{StateDir: t.TempDir()})
	for i := range 200 {
		j := rng.IntN(len(cfgs))
		if err := m.Set(cfgs[j]); err != nil {
			t.Fatalf("step %d: Set(config %d): %v", i, j, err)
		}
		checkFakeState(t, f, m, cfgs[j])
		if t.Failed() {
			t.Fatalf("step %d: config %d", i, j)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(f.String(), orig); diff != "" {
		t.Errorf("after Close (-got +want):\n%s", diff)
	}
	if ents, _ := os.ReadDir(m.opts.StateDir); len(ents) != 0 {
		t.Errorf("state dir not empty after Close: %v", ents)
	}
}

func TestPartialFailureConverges(t *testing.T) {
	f := fakeLAN()
	orig := f.String()
	m := newFakeManager(t, f, Options{StateDir: t.TempDir()})
	cfg := fullTunnel()
	if err := m.Set(cfg); err != nil {
		t.Fatal(err)
	}
	next := cfg.Clone()
	next.IncludedRoutes = append(next.IncludedRoutes, Route{Dst: pfx("10.1.0.0/16")}, Route{Dst: pfx("10.2.0.0/16")})
	next.ExcludedRoutes = next.ExcludedRoutes[1:]
	boom := errors.New("boom")
	f.fail = func(op, item string) error {
		if op == "route-add" && item == "10.2.0.0/16" {
			return boom
		}
		return nil
	}
	err := m.Set(next)
	if !errors.Is(err, boom) {
		t.Fatalf("Set = %v, want %v", err, boom)
	}
	// 10.1/16 went in; the excluded route to be deleted is still there
	// because nothing is deleted after a failed addition.
	if _, ok := f.routes[fakeRouteKey{DefaultTable, pfx("10.1.0.0/16")}]; !ok {
		t.Errorf("10.1.0.0/16 missing")
	}
	if _, ok := f.routes[fakeRouteKey{DefaultTable, pfx("203.0.113.7/32")}]; !ok {
		t.Errorf("203.0.113.7/32 deleted before the additions succeeded")
	}
	f.fail = nil
	before := m.Stats()
	if err := m.Set(next); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m.Stats().Sub(before), Stats{RouteAdds: 1, RouteDels: 1}); diff != "" {
		t.Errorf("retry changes (-got +want):\n%s", diff)
	}
	checkFakeState(t, f, m, next)

	// A failing removal leaves the rest removed and a later Set(nil)
	// finishes.
	f.fail = func(op, item string) error {
		if op == "rule-del" && strings.Contains(item, "ipv6 rule 7303") {
			return boom
		}
		return nil
	}
	if err := m.Set(nil); !errors.Is(err, boom) {
		t.Fatalf("Set(nil) = %v, want %v", err, boom)
	}
	f.fail = nil
	if err := m.Set(nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(f.String(), orig); diff != "" {
		t.Errorf("after Set(nil) (-got +want):\n%s", diff)
	}
}

func TestCrashCleanUpFake(t *testing.T) {
	f := fakeLAN()
	orig := f.String()
	dir := t.TempDir()
	m := newFakeManager(t, f, Options{StateDir: dir})
	if err := m.Set(fullTunnel()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(journalPath(dir, DefaultTable))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("journal mode %v, want 0600", fi.Mode().Perm())
	}
	// The process dies here: no Close. A new Manager must refuse.
	o, _ := Options{StateDir: dir}.withDefaults()
	if _, err := newManager("tun0", o, f); !errors.Is(err, ErrLeftover) {
		t.Fatalf("newManager after crash = %v, want ErrLeftover", err)
	}
	if err := cleanUp(o, f); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(f.String(), orig); diff != "" {
		t.Errorf("after CleanUp (-got +want):\n%s", diff)
	}
	if _, err := newManager("tun0", o, f); err != nil {
		t.Fatalf("newManager after CleanUp: %v", err)
	}
	// Without a journal, the sweep still finds rules and routes.
	m2 := newFakeManager(t, f, Options{})
	if err := m2.Set(fullTunnel()); err != nil {
		t.Fatal(err)
	}
	if err := cleanUp(o, f); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.RouteList(0, DefaultTable); len(got) != 0 {
		t.Errorf("routes left in our table: %v", got)
	}
	if got, _ := f.RuleList(0); len(got) != 5 {
		t.Errorf("rules after sweep: %v", got)
	}
}

func TestCollisions(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(f *fakeOS)
		option string // of the ConflictError; "" for ErrLeftover
	}{
		{"foreign rule at our priority", func(f *fakeOS) {
			f.rules = append(f.rules, kRule{Family: 4, Priority: 7302, Action: frActToTable, Table: 100, Protocol: 3})
		}, "RulePriority"},
		{"foreign rule to our table", func(f *fakeOS) {
			f.rules = append(f.rules, kRule{Family: 6, Priority: 100, Action: frActToTable, Table: DefaultTable, Protocol: 3})
		}, "Table"},
		{"foreign route in our table", func(f *fakeOS) {
			f.addKernelRoute(kRoute{Table: DefaultTable, Dst: pfx("10.0.0.0/8"), Type: rtnUnicast, Protocol: 4, LinkIndex: ethIndex})
		}, "Table"},
		{"foreign rule matching our mark", func(f *fakeOS) {
			f.rules = append(f.rules, kRule{Family: 4, Priority: 100, Action: frActToTable, Table: 100, Mark: 0x10000000, Mask: 0xf0000000, Protocol: 3})
		}, "Mark"},
		{"our rule left behind", func(f *fakeOS) {
			f.rules = append(f.rules, ruleLadder(&Options{RulePriority: DefaultRulePriority, Table: DefaultTable, Protocol: DefaultProtocol}, 4)[3])
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fakeLAN()
			tt.setup(f)
			o, _ := Options{}.withDefaults()
			_, err := newManager("tun0", o, f)
			var ce *ConflictError
			switch {
			case tt.option == "" && !errors.Is(err, ErrLeftover):
				t.Fatalf("err = %v, want ErrLeftover", err)
			case tt.option != "" && !errors.As(err, &ce):
				t.Fatalf("err = %v, want a ConflictError", err)
			case tt.option != "" && ce.Option != tt.option:
				t.Fatalf("err = %v, want option %s", err, tt.option)
			}
			t.Logf("error: %v", err)
		})
	}
	t.Run("Tailscale's numbers do not collide", func(t *testing.T) {
		f := fakeLAN()
		for _, r := range []kRule{
			{Family: 4, Priority: 5210, Action: frActToTable, Table: tableMain, Mark: 0x80000, Mask: 0xff0000, Protocol: 3},
			{Family: 4, Priority: 5270, Action: frActToTable, Table: 52, Protocol: 3},
		} {
			f.rules = append(f.rules, r)
		}
		o, _ := Options{}.withDefaults()
		if _, err := newManager("tun0", o, f); err != nil {
			t.Fatal(err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{*fullTunnel(), ""},
		{Config{MTU: 60}, "Config.MTU"},
		{Config{MTU: 1200, Addresses: []netip.Prefix{pfx("fd00::1/64")}}, "below 1280"},
		{Config{TunnelOverhead: -1}, "TunnelOverhead"},
		{Config{Addresses: []netip.Prefix{{}}}, "Addresses[0]"},
		{Config{Addresses: []netip.Prefix{pfx("10.0.0.1/24"), pfx("10.0.0.1/16")}}, "Addresses[1]"},
		{Config{Addresses: []netip.Prefix{pfx("224.0.0.1/32")}}, "not a unicast"},
		{Config{IncludedRoutes: []Route{{Dst: pfx("10.0.0.1/8")}}}, "host bits"},
		{Config{IncludedRoutes: []Route{{Dst: pfx("10.0.0.0/8"), Gateway: addr("fd00::1")}}}, "Gateway"},
		{Config{IncludedRoutes: []Route{{Dst: pfx("10.0.0.0/8")}, {Dst: pfx("10.0.0.0/8")}}}, "IncludedRoutes[1]"},
		{Config{IncludedRoutes: []Route{{Dst: pfx("10.0.0.0/8")}}, ExcludedRoutes: []netip.Prefix{pfx("10.0.0.0/8")}}, "ExcludedRoutes[0]"},
		{Config{ExcludedRoutes: []netip.Prefix{pfx("::ffff:10.0.0.0/104")}}, "IPv4-mapped"},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		opts Options
		want string
	}{
		{Options{}, ""},
		{Options{Mark: 0x4}, ""},
		{Options{Table: 254}, "Options.Table"},
		{Options{RulePriority: 32760}, "Options.RulePriority"},
		{Options{MarkMask: 0xff}, "Options.Mark"},
		{Options{Mark: 0x100, MarkMask: 0xff}, "outside"},
		{Options{Protocol: 2}, "Options.Protocol"},
		{Options{StateDir: "/nonexistent/netcfg"}, "Options.StateDir"},
	}
	for i, tt := range tests {
		o, err := tt.opts.withDefaults()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%d: %v", i, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%d: err = %v, want %q", i, err, tt.want)
		}
		if i == 1 && o.MarkMask != 0x4 {
			t.Errorf("MarkMask = %#x, want 0x4", o.MarkMask)
		}
	}
}

func TestConfigEqualClone(t *testing.T) {
	a := fullTunnel()
	b := a.Clone()
	if !a.Equal(b) {
		t.Fatal("clone not equal")
	}
	b.ExcludedRoutes[0] = pfx("203.0.113.8/32")
	if a.Equal(b) || a.ExcludedRoutes[0] == b.ExcludedRoutes[0] {
		t.Fatal("clone shares memory")
	}
	var n *Config
	if !n.Equal(nil) || n.Equal(a) || a.Equal(nil) || n.Clone() != nil {
		t.Fatal("nil handling")
	}
}
