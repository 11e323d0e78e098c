package netcfg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/netext/netext/internal/nettest"
	"github.com/vishvananda/netlink"
)

// lab is a client namespace with a tunnel link (a dummy, down) and an
// underlay veth eth0 to a router namespace: LAN 192.168.50.0/24 and
// 2001:db8:50::/64, default routes via the router.
type lab struct {
	c, r *nettest.NS
	tun  string
	dir  string
}

var (
	gw4 = addr("192.168.50.1")
	gw6 = addr("2001:db8:50::1")
)

func newLab(t testing.TB) *lab {
	t.Helper()
	nettest.RequireRoot(t)
	l := &lab{c: nettest.NewNS(t), r: nettest.NewNS(t), tun: "tun0", dir: t.TempDir()}
	// Without duplicate address detection, link-local addresses and their
	// routes appear at once, so snapshots do not race with them.
	for _, ns := range []*nettest.NS{l.c, l.r} {
		ns.Sysctl(t, "ipv6/conf/all/accept_dad", "0")
		ns.Sysctl(t, "ipv6/conf/default/accept_dad", "0")
	}
	nettest.Veth(t, l.c, "eth0", l.r, "lan0")
	l.c.AddAddr(t, "eth0", "192.168.50.2/24")
	l.c.AddAddr(t, "eth0", "2001:db8:50::2/64")
	l.r.AddAddr(t, "lan0", "192.168.50.1/24")
	l.r.AddAddr(t, "lan0", "2001:db8:50::1/64")
	l.c.Run(t, "ip", "route", "add", "default", "via", gw4.String())
	l.c.Run(t, "ip", "-6", "route", "add", "default", "via", gw6.String())
	l.c.AddDummy(t, l.tun)
	// A tunnel device starts down, as a fresh TUN does.
	l.c.Run(t, "ip", "link", "set", l.tun, "down")
	return l
}

func (l *lab) opts() Options {
	return Options{StateDir: l.dir, NetNS: l.c.Handle()}
}

func (l *lab) manager(t testing.TB) *Manager {
	t.Helper()
	m, err := New(l.tun, l.opts())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

type pathCase struct {
	name string
	dst  string
	mark uint32
	want string // nettest.Route.String() without the table
}

func (l *lab) checkPaths(t *testing.T, cases []pathCase) {
	t.Helper()
	for _, c := range cases {
		r, err := l.c.RouteGet(addr(c.dst), c.mark)
		if err != nil {
			t.Errorf("%s: RouteGet(%s): %v", c.name, c.dst, err)
			continue
		}
		r.Table = 0
		if got := r.String(); got != c.want {
			t.Errorf("%s: %s mark %#x takes %q, want %q", c.name, c.dst, c.mark, got, c.want)
		}
	}
}

func TestRoutingInNamespace(t *testing.T) {
	l := newLab(t)
	m := l.manager(t)
	cfg := fullTunnel()
	// A tunnel route more specific than the LAN.
	cfg.IncludedRoutes = append(cfg.IncludedRoutes, Route{Dst: pfx("192.168.50.128/25")})
	if err := m.Set(cfg); err != nil {
		t.Fatal(err)
	}
	t.Logf("rules:\n%s", l.c.Run(t, "ip", "rule")+l.c.Run(t, "ip", "-6", "rule"))
	t.Logf("table:\n%s", l.c.Run(t, "ip", "route", "show", "table", "7373")+l.c.Run(t, "ip", "-6", "route", "show", "table", "7373"))

	const mark = DefaultMark
	tunnel, via4, via6 := "unicast dev tun0", "unicast via 192.168.50.1 dev eth0", "unicast via 2001:db8:50::1 dev eth0"
	cases := []pathCase{
		{"tunnel v4", "8.8.8.8", 0, tunnel},
		{"tunnel v6", "2606:4700::1111", 0, tunnel},
		{"excluded host", "203.0.113.7", 0, via4},
		{"excluded v4 subnet", "198.51.100.9", 0, via4},
		{"excluded v6 subnet", "2001:db8:ff::1", 0, via6},
		{"LAN v4", "192.168.50.77", 0, "unicast dev eth0"},
		{"LAN v6", "2001:db8:50::77", 0, "unicast dev eth0"},
		{"tunnel route more specific than the LAN", "192.168.50.200", 0, tunnel},
		{"marked v4", "8.8.8.8", mark, via4},
		{"marked v6", "2606:4700::1111", mark, via6},
		{"marked with other bits", "8.8.8.8", mark | 0x1, via4},
	}
	l.checkPaths(t, cases)

	// TunnelVision: a DHCP server pushes a more specific route into main.
	// Added without a device, the kernel resolves its gateway with a
	// link-scope lookup through our rules, which must find the LAN.
	l.c.Run(t, "ip", "route", "add", "8.8.8.0/24", "via", gw4.String())
	l.c.Run(t, "ip", "-6", "route", "add", "2606:4700::/32", "via", gw6.String())
	l.checkPaths(t, []pathCase{
		{"DHCP route does not pull v4 traffic out", "8.8.8.8", 0, tunnel},
		{"DHCP route does not pull v6 traffic out", "2606:4700::1111", 0, tunnel},
		{"marked still bypasses", "8.8.8.8", mark, via4},
	})

	// Marked traffic that main cannot route must not fall into our table.
	l.c.Run(t, "ip", "route", "del", "default")
	l.c.Run(t, "ip", "-6", "route", "del", "default")
	l.checkPaths(t, []pathCase{
		{"marked without main route v4", "9.9.9.9", mark, "unreachable"},
		{"marked without main route v6", "2a00::1", mark, "unreachable"},
		{"unmarked still tunneled", "9.9.9.9", 0, tunnel},
	})
}

func TestEnforceRoutesInNamespace(t *testing.T) {
	l := newLab(t)
	m := l.manager(t)
	cfg := fullTunnel()
	cfg.EnforceRoutes = true
	if err := m.Set(cfg); err != nil {
		t.Fatal(err)
	}
	l.checkPaths(t, []pathCase{
		{"LAN goes through the tunnel", "192.168.50.77", 0, "unicast dev tun0"},
		{"excluded still excluded", "203.0.113.7", 0, "unicast via 192.168.50.1 dev eth0"},
		{"marked reaches the LAN", "192.168.50.77", DefaultMark, "unicast dev eth0"},
	})
}

func TestOnlyDifferenceApplied(t *testing.T) {
	l := newLab(t)
	m := l.manager(t)
	cfg := fullTunnel()
	if err := m.Set(cfg); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		change func(c *Config)
		want   Stats
	}{
		{"same config", func(c *Config) {}, Stats{}},
		{"one route changes", func(c *Config) { c.ExcludedRoutes[1] = pfx("198.51.100.0/25") }, Stats{RouteAdds: 1, RouteDels: 1}},
		{"same again", func(c *Config) {}, Stats{}},
		{"gateway in place", func(c *Config) {
			c.IncludedRoutes = append(c.IncludedRoutes, Route{Dst: pfx("10.0.0.0/8"), Gateway: addr("10.64.0.1")})
		}, Stats{RouteAdds: 1}},
		{"MTU", func(c *Config) { c.MTU = 1380 }, Stats{LinkChanges: 1}},
		{"address", func(c *Config) { c.Addresses[0] = pfx("10.64.0.3/32") }, Stats{AddrAdds: 1, AddrDels: 1}},
	}
	for _, s := range steps {
		s.change(cfg)
		before := m.Stats()
		if err := m.Set(cfg); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if diff := cmp.Diff(m.Stats().Sub(before), s.want); diff != "" {
			t.Errorf("%s: netlink changes (-got +want):\n%s", s.name, diff)
		}
		checkKernelState(t, l, m, cfg)
	}
}

func TestSetNilRestoresSnapshot(t *testing.T) {
	l := newLab(t)
	before := l.c.Snapshot(t)
	m := l.manager(t)
	cfg := fullTunnel()
	cfg.MTU = 1400
	if err := m.Set(cfg); err != nil {
		t.Fatal(err)
	}
	if during := l.c.Snapshot(t); during == before {
		t.Fatal("Set changed nothing")
	}
	if err := m.Set(nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(l.c.Snapshot(t), before); diff != "" {
		t.Errorf("snapshot after Set(nil) (-got +want):\n%s", diff)
	}
	// Set again and Close: same result, and no journal left.
	if err := m.Set(cfg); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(l.c.Snapshot(t), before); diff != "" {
		t.Errorf("snapshot after Close (-got +want):\n%s", diff)
	}
	if ents, _ := os.ReadDir(l.dir); len(ents) != 0 {
		t.Errorf("journal left after Close: %v", ents)
	}
}

const crashChildEnv = "NETCFG_CRASH_CHILD_STATEDIR"

// TestCrashCleanUp applies a config in a child process inside the
// namespace, kills it with SIGKILL and checks that CleanUp restores the
// namespace.
func TestCrashCleanUp(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(t, dir)
		return
	}
	l := newLab(t)
	before := l.c.Snapshot(t)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := l.c.Command(ctx, os.Args[0], "-test.run=^TestCrashCleanUp$", "-test.v")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+l.dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	applied := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "NETCFG-APPLIED") {
				applied <- nil
				return
			}
			if strings.HasPrefix(sc.Text(), "NETCFG-FAILED") {
				applied <- errors.New(sc.Text())
				return
			}
		}
		applied <- fmt.Errorf("child exited without applying: %v", sc.Err())
	}()
	select {
	case err := <-applied:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("child did not apply in time")
	}
	// `ip netns exec` execs the test binary in place, so cmd.Process is
	// the child itself.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	crashed := l.c.Snapshot(t)
	if crashed == before {
		t.Fatal("the child changed nothing")
	}
	if _, err := New(l.tun, l.opts()); !errors.Is(err, ErrLeftover) {
		t.Fatalf("New after crash = %v, want ErrLeftover", err)
	}
	if err := CleanUp(l.opts()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(l.c.Snapshot(t), before); diff != "" {
		t.Errorf("snapshot after CleanUp (-got +want):\n%s", diff)
	}
	if ents, _ := os.ReadDir(l.dir); len(ents) != 0 {
		t.Errorf("journal left after CleanUp: %v", ents)
	}
	m, err := New(l.tun, l.opts())
	if err != nil {
		t.Fatalf("New after CleanUp: %v", err)
	}
	m.Close()
}

// crashChild runs in the namespace (`ip netns exec`), applies a config and
// waits to be killed.
func crashChild(t *testing.T, dir string) {
	m, err := New("tun0", Options{StateDir: dir})
	if err == nil {
		cfg := fullTunnel()
		cfg.MTU = 1300
		err = m.Set(cfg)
	}
	if err != nil {
		fmt.Printf("NETCFG-FAILED %v\n", err)
		t.Fatal(err)
	}
	fmt.Println("NETCFG-APPLIED")
	time.Sleep(50 * time.Second) // killed long before
	t.Fatal("not killed")
}

// checkKernelState lists the namespace's addresses on the link, the routes
// of our table and the rules at our priorities, and compares them with what
// cfg says.
func checkKernelState(t *testing.T, l *lab, m *Manager, cfg *Config) {
	t.Helper()
	b, err := newOSBackend(l.c.Handle())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	link, err := b.LinkByName(l.tun)
	if err != nil {
		t.Fatal(err)
	}
	main, err := b.RouteList(0, tableMain)
	if err != nil {
		t.Fatal(err)
	}
	want := wantState(cfg, &m.opts, link.Index, main)

	got := newState()
	h := l.c.Netlink(t)
	nl, _ := h.LinkByIndex(link.Index)
	addrs, err := h.AddrList(nl, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		p := netip.PrefixFrom(netip.MustParseAddr(a.IP.String()), maskBits(a))
		if !p.Addr().IsLinkLocalUnicast() {
			got.addrs[p] = true
		}
	}
	routes, err := b.RouteList(0, m.opts.Table)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		r.Metric = 0 // IPv6 routes get the kernel's default metric
		if r.Type != rtnUnicast {
			r.LinkIndex = 0 // IPv6 throw routes point at lo
		}
		got.routes[r.Dst] = r
	}
	rules, err := b.RuleList(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if m.opts.ownsPriority(r.Priority) {
			got.rules[r.key()] = r
		}
	}
	if diff := cmp.Diff(got.String(), want.String()); diff != "" {
		t.Errorf("kernel state (-got +want):\n%s", diff)
	}
	if cfg != nil {
		v4, v6 := primaryLinks(main, link.Index)
		mtu := deriveMTU(cfg, m.linkMTU(v4), m.linkMTU(v6))
		if link.MTU != mtu || !link.Up {
			t.Errorf("link mtu %d up %v, want mtu %d up", link.MTU, link.Up, mtu)
		}
	}
}

func maskBits(a netlink.Addr) int {
	ones, _ := a.Mask.Size()
	return ones
}

func TestRandomTransitionsInNamespace(t *testing.T) {
	l := newLab(t)
	before := l.c.Snapshot(t)
	m := l.manager(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	cfgs := transitionConfigs()
	order := rng.Perm(len(cfgs))
	order = append(order, rng.Perm(len(cfgs))...)
	for i, j := range order {
		if err := m.Set(cfgs[j]); err != nil {
			t.Fatalf("step %d: Set(config %d): %v", i, j, err)
		}
		checkKernelState(t, l, m, cfgs[j])
		if t.Failed() {
			t.Fatalf("step %d: config %d (seed %d)", i, j, seed)
		}
	}
	if err := m.Set(nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(l.c.Snapshot(t), before); diff != "" {
		t.Errorf("snapshot after Set(nil) (-got +want):\n%s", diff)
	}
}

func TestCollisionsInNamespace(t *testing.T) {
	tests := []struct {
		name   string
		cmd    []string
		option string
	}{
		{"foreign rule at our priority", []string{"ip", "rule", "add", "priority", "7301", "lookup", "100"}, "RulePriority"},
		{"foreign rule to our table", []string{"ip", "-6", "rule", "add", "priority", "100", "lookup", "7373"}, "Table"},
		{"foreign route in our table", []string{"ip", "route", "add", "10.0.0.0/8", "dev", "eth0", "table", "7373"}, "Table"},
		{"foreign rule using our mark", []string{"ip", "rule", "add", "priority", "200", "fwmark", "0x10000000", "lookup", "100"}, "Mark"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t)
			l.c.Run(t, tt.cmd[0], tt.cmd[1:]...)
			m, err := New(l.tun, l.opts())
			if err == nil {
				m.Close()
			}
			var ce *ConflictError
			if !errors.As(err, &ce) || ce.Option != tt.option {
				t.Fatalf("New = %v, want a conflict naming Options.%s", err, tt.option)
			}
			t.Logf("%v", err)
		})
	}
}

func TestLinkGoneSetNil(t *testing.T) {
	l := newLab(t)
	before := l.c.Snapshot(t)
	m := l.manager(t)
	if err := m.Set(fullTunnel()); err != nil {
		t.Fatal(err)
	}
	l.c.Run(t, "ip", "link", "del", l.tun)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// The link and its addresses went with the device; rules and throw
	// routes must be gone too.
	after := l.c.Snapshot(t)
	for _, section := range []string{"## ip -4 route", "## ip -4 rule"} {
		if diff := cmp.Diff(snapshotFrom(after, section), snapshotFrom(before, section)); diff != "" {
			t.Errorf("routes and rules (-got +want):\n%s", diff)
		}
	}
	if ents, _ := os.ReadDir(l.dir); len(ents) != 0 {
		t.Errorf("journal left after Close: %v", ents)
	}
}

// snapshotFrom returns the part of a nettest snapshot from section on.
func snapshotFrom(s, section string) string {
	if i := strings.Index(s, section); i >= 0 {
		return s[i:]
	}
	return ""
}

// TestRouteBatchErrors checks that a failure inside a batch is reported for
// exactly the failing route, also beyond the first batch, and that the
// other routes are applied.
func TestRouteBatchErrors(t *testing.T) {
	l := newLab(t)
	b, err := newOSBackend(l.c.Handle())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	link, err := b.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	const n, bad = 3000, 1500
	rs := make([]kRoute, n)
	for i := range rs {
		a := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		rs[i] = kRoute{Table: DefaultTable, Dst: netip.PrefixFrom(a, 32), Type: rtnUnicast, Protocol: DefaultProtocol, LinkIndex: link.Index}
	}
	rs[bad].LinkIndex = 99999 // no such device
	per, err := b.RouteAdd(rs)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range per {
		if (e != nil) != (i == bad) {
			t.Errorf("route %d (%s): error %v", i, rs[i].Dst, e)
		}
	}
	got, err := b.RouteList(4, DefaultTable)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n-1 {
		t.Errorf("%d routes in the table, want %d", len(got), n-1)
	}
	// Deleting all, the missing one included, succeeds.
	per, err = b.RouteDel(rs)
	if err != nil || per != nil {
		t.Fatalf("RouteDel = %v, %v", per, err)
	}
	if got, _ := b.RouteList(4, DefaultTable); len(got) != 0 {
		t.Errorf("%d routes left", len(got))
	}
}
