package firewall

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/netcfg"
)

var marked = sockOpts{mark: netcfg.DefaultMark}

// TestTraffic sends TCP, UDP, ICMP and DNS from the client to the public
// host (outside the tunnel), marked and unmarked, and to the server through
// the tunnel, under each configuration, and checks what passes and that
// nothing the table rejects reached the public host or the LAN.
func TestTraffic(t *testing.T) {
	e := newEnv(t)
	before := e.Client.Snapshot(t)
	m := e.manager(t)
	lan4 := e.ClientGW4 // Internet's end of the client link: a LAN host
	local := []netip.Prefix{e.ClientAddr4.Masked(), e.ClientAddr6.Masked()}
	v4only := tunnel()
	v4only.IPv6, v4only.DefaultIPv6 = false, false

	type check struct {
		name string
		dst  netip.Addr
		o    sockOpts
		want map[string]string
	}
	pub4, pub6 := e.PublicHost4, e.PublicHost6
	tests := []struct {
		name   string
		cfg    *Config
		checks []check
	}{{
		name: "no table",
		checks: []check{
			{"public4", pub4, sockOpts{}, all(passed, true)},
			{"public6", pub6, sockOpts{}, all(passed, true)},
		},
	}, {
		name: "includeAllNetworks",
		cfg:  &Config{Tunnels: []Tunnel{func() Tunnel { t := tunnel(); t.IncludeAllNetworks = true; return t }()}, LocalNetworks: local},
		checks: []check{
			{"public4", pub4, sockOpts{}, all(rejected, true)},
			{"public6", pub6, sockOpts{}, all(rejected, true)},
			{"lan4", lan4, sockOpts{}, all(rejected, true)},
			{"public4 marked", pub4, marked, all(passed, false)},
			{"public6 marked", pub6, marked, all(passed, false)},
			{"public4 bound to eth0", pub4, sockOpts{dev: "eth0"}, all(rejected, false)},
			{"server4 through tunnel", e.Server4, sockOpts{}, all(passed, true)},
			{"server6 through tunnel", e.Server6, sockOpts{}, all(passed, true)},
		},
	}, {
		name: "includeAllNetworks excludeLocalNetworks",
		cfg: &Config{Tunnels: []Tunnel{func() Tunnel {
			t := tunnel()
			t.IncludeAllNetworks, t.ExcludeLocalNetworks = true, true
			return t
		}()}, LocalNetworks: local},
		checks: []check{
			{"public4", pub4, sockOpts{}, all(rejected, true)},
			{"lan4", lan4, sockOpts{}, all(passed, true)},
			{"lan6", e.ClientGW6, sockOpts{}, all(passed, true)},
			{"server4 through tunnel", e.Server4, sockOpts{}, all(passed, true)},
		},
	}, {
		name: "IPv4-only tunnel blocks IPv6",
		cfg:  &Config{Tunnels: []Tunnel{v4only}},
		checks: []check{
			{"public6", pub6, sockOpts{}, all(rejected, true)},
			{"public6 marked", pub6, marked, all(passed, false)},
			{"public4", pub4, sockOpts{}, all(passed, true)},
			{"server4 through tunnel", e.Server4, sockOpts{}, all(passed, true)},
		},
	}, {
		name: "enforceRoutes defeats sockets bound to eth0",
		cfg: &Config{Tunnels: []Tunnel{func() Tunnel {
			t := tunnel()
			t.EnforceRoutes = true
			t.IncludedRoutes = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
			return t
		}()}},
		checks: []check{
			{"public4 bound to eth0", pub4, sockOpts{dev: "eth0"}, all(rejected, false)},
			{"public4", pub4, sockOpts{}, all(rejected, true)},
			{"public4 marked", pub4, marked, all(passed, false)},
			{"public6 (not included)", pub6, sockOpts{}, all(passed, true)},
		},
	}, {
		name: "strict DNS",
		cfg: &Config{Tunnels: []Tunnel{func() Tunnel {
			t := tunnel()
			t.StrictDNS, t.DNSServers = true, []netip.Addr{e.Server4, e.Server6}
			return t
		}()}},
		checks: []check{
			{"public4", pub4, sockOpts{}, map[string]string{"tcp": passed, "udp": passed, "icmp": passed, "dns/udp": rejected, "dns/tcp": rejected}},
			{"public6", pub6, sockOpts{}, map[string]string{"tcp": passed, "udp": passed, "icmp": passed, "dns/udp": rejected, "dns/tcp": rejected}},
			{"server4 DNS through tunnel", e.Server4, sockOpts{}, all(passed, true)},
			{"server6 DNS through tunnel", e.Server6, sockOpts{}, all(passed, true)},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := m.Set(tt.cfg); err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.checks {
				before := e.public.packets.Load() + e.lan.packets.Load()
				start := time.Now()
				got := probes(e.Client, c.dst, c.o)
				if diff := cmp.Diff(got, c.want); diff != "" {
					t.Errorf("%s: outcomes (-got +want):\n%s", c.name, diff)
				}
				if took := time.Since(start); took > 4*probeTimeout {
					t.Logf("%s: probes took %v", c.name, took)
				}
				leaked := e.public.packets.Load() + e.lan.packets.Load() - before
				if allRejected(c.want) && leaked != 0 {
					t.Errorf("%s: %d unmarked packets or connections reached the public host or the LAN", c.name, leaked)
				}
			}
		})
	}
	if err := m.Set(nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e.Client.Snapshot(t), before); diff != "" {
		t.Errorf("namespace after Set(nil) (-got +want):\n%s", diff)
	}
}

func allRejected(outcomes map[string]string) bool {
	for _, o := range outcomes {
		if o != rejected {
			return false
		}
	}
	return true
}

// TestInbound sends UDP and TCP from the internet and from the LAN to an echo
// service on the client: with IncludeAllNetworks only the LAN gets through,
// and only with ExcludeLocalNetworks; replies to the client's own flows
// (established) and to protected sockets always do.
func TestInbound(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t)
	client := startEcho(t, e.Client, e.ClientAddr4.Addr(), e.ClientAddr6.Addr())
	fromInternet := sockOpts{src: e.PublicHost4}
	fromLAN := sockOpts{src: e.ClientGW4}
	for _, tt := range []struct {
		name          string
		eln           bool
		internet, lan string
	}{
		{"includeAllNetworks", false, timedOut, timedOut},
		{"includeAllNetworks excludeLocalNetworks", true, timedOut, passed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tun := tunnel()
			tun.IncludeAllNetworks, tun.ExcludeLocalNetworks = true, tt.eln
			if err := m.Set(&Config{Tunnels: []Tunnel{tun}, LocalNetworks: []netip.Prefix{e.ClientAddr4.Masked()}}); err != nil {
				t.Fatal(err)
			}
			before := client.packets.Load()
			dst := netip.AddrPortFrom(e.ClientAddr4.Addr(), echoPort)
			if got := probeUDP(e.Internet, dst, fromInternet); got != tt.internet {
				t.Errorf("UDP from the internet: %s, want %s", got, tt.internet)
			}
			if got := probeUDP(e.Internet, dst, fromLAN); got != tt.lan {
				t.Errorf("UDP from the LAN: %s, want %s", got, tt.lan)
			}
			if n := client.packets.Load() - before; tt.lan != passed && n != 0 {
				t.Errorf("%d datagrams reached the client", n)
			}
			if got := probeUDP(e.Client, netip.AddrPortFrom(e.PublicHost4, echoPort), marked); got != passed {
				t.Errorf("protected UDP and its reply: %s, want passed", got)
			}
		})
	}
	if err := m.Set(nil); err != nil {
		t.Fatal(err)
	}
}

// TestLocalNet is TunnelCrack's LocalNet attack: the LAN claims the public
// subnet of the public host, so its connected route beats the tunnel's
// default route. Without EnforceRoutes the traffic leaks to the LAN (Apple's
// semantics); with it, it is rejected; with ExcludeLocalNetworks as well,
// the "local" subnet is allowed again, as Apple defines.
func TestLocalNet(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t)
	// The tunnel carries the default route; the rogue LAN claims 192.0.2.0/24.
	e.Client.Run(t, "ip", "route", "replace", "default", "via", e.TunPeer4.String(), "dev", tunName)
	e.Client.AddAddr(t, "eth0", "192.0.2.99/24")
	e.Internet.Run(t, "ip", "route", "add", "192.0.2.99/32", "dev", "client0")
	if r, err := e.Client.RouteGet(e.PublicHost4, 0); err != nil || r.Dev != "eth0" {
		t.Fatalf("route to the public host: %v, %v; want the rogue LAN route on eth0", r, err)
	}
	local, err := LocalNetworks(Options{NetNS: e.Client.Handle()}, tunName)
	if err != nil {
		t.Fatal(err)
	}
	wantLocal := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), e.ClientAddr4.Masked(), e.ClientAddr6.Masked()}
	if diff := cmp.Diff(local, wantLocal, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("LocalNetworks (-got +want):\n%s", diff)
	}
	base := Tunnel{Interface: tunName, IPv4: true, IPv6: true, DefaultIPv4: true,
		IncludedRoutes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}
	for _, tt := range []struct {
		name    string
		enforce bool
		eln     bool
		want    string
	}{
		{"without enforceRoutes", false, false, passed},
		{"with enforceRoutes", true, false, rejected},
		{"with enforceRoutes and excludeLocalNetworks", true, true, passed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tun := base
			tun.EnforceRoutes, tun.ExcludeLocalNetworks = tt.enforce, tt.eln
			if err := m.Set(&Config{Tunnels: []Tunnel{tun}, LocalNetworks: local}); err != nil {
				t.Fatal(err)
			}
			before := e.public.packets.Load()
			if diff := cmp.Diff(probes(e.Client, e.PublicHost4, sockOpts{}), all(tt.want, true)); diff != "" {
				t.Errorf("outcomes (-got +want):\n%s", diff)
			}
			if leaked := e.public.packets.Load() - before; tt.want == rejected && leaked != 0 {
				t.Errorf("%d packets or connections reached the LAN", leaked)
			}
			if got := probeUDP(e.Client, netip.AddrPortFrom(e.PublicHost4, echoPort), marked); got != passed {
				t.Errorf("marked UDP: %s, want passed", got)
			}
		})
	}
	if err := m.Set(nil); err != nil {
		t.Fatal(err)
	}
}

// TestAtomicReplace floods the public host with unmarked UDP while the table
// is replaced 100 times: not one datagram may get through.
func TestAtomicReplace(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t)
	tun := tunnel()
	tun.IncludeAllNetworks = true
	cfgs := []*Config{
		{Tunnels: []Tunnel{tun}},
		{Tunnels: []Tunnel{tun}, LocalNetworks: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}},
	}
	if err := m.Set(cfgs[0]); err != nil {
		t.Fatal(err)
	}
	before := e.public.packets.Load()
	var sent int
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var conns []net.Conn
	for _, dst := range []netip.Addr{e.PublicHost4, e.PublicHost6} {
		c, err := dialUDPIn(e.Client, dst)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			default:
			}
			for _, c := range conns {
				c.Write([]byte("flood"))
				sent++
			}
		}
	}()
	for i := range 100 {
		if err := m.Set(cfgs[i%2]); err != nil {
			t.Fatalf("Set %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
	if leaked := e.public.packets.Load() - before; leaked != 0 {
		t.Errorf("%d of %d datagrams reached the public host while the table was replaced", leaked, sent)
	}
	if sent == 0 {
		t.Error("the flood sent nothing")
	}
	t.Logf("%d datagrams sent during 100 replacements, none through", sent)
	if err := m.Set(nil); err != nil {
		t.Fatal(err)
	}
}

// TestCutFlows opens TCP connections before protection engages: the one
// to the public host outside the tunnel is cut, the protected one and the
// one through the tunnel live on.
func TestCutFlows(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t)
	trackConnections(t, e.Client)
	leak, err := dialTCP(e.Client, netip.AddrPortFrom(e.PublicHost4, echoPort), sockOpts{})
	if err != nil {
		t.Fatal(err)
	}
	defer leak.Close()
	prot, err := dialTCP(e.Client, netip.AddrPortFrom(e.PublicHost4, echoPort), marked)
	if err != nil {
		t.Fatal(err)
	}
	defer prot.Close()
	tunc, err := dialTCP(e.Client, netip.AddrPortFrom(e.Server4, echoPort), sockOpts{})
	if err != nil {
		t.Fatal(err)
	}
	defer tunc.Close()
	udpLeak, err := dialUDPIn(e.Client, e.PublicHost6)
	if err != nil {
		t.Fatal(err)
	}
	defer udpLeak.Close()
	udpLeak.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := udpLeak.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	if _, err := udpLeak.Read(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}

	tun := tunnel()
	tun.IncludeAllNetworks = true
	if err := m.Set(&Config{Tunnels: []Tunnel{tun}}); err != nil {
		t.Fatal(err)
	}
	st, err := m.CutFlows()
	if errors.Is(err, errors.ErrUnsupported) {
		t.Logf("kernel without SOCK_DESTROY: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("CutFlows: %+v", st)
	if st.Sockets+st.Unsupported != 2 {
		t.Errorf("CutFlows cut %d sockets (%d unsupported), want the TCP and UDP ones to the public host", st.Sockets, st.Unsupported)
	}
	if st.Conntrack < 2 {
		t.Errorf("CutFlows deleted %d conntrack entries, want at least those of the TCP and UDP flows to the public host", st.Conntrack)
	}
	h := e.Client.Netlink(t)
	flows, err := h.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	protPort := prot.LocalAddr().(*net.TCPAddr).Port
	found := false
	for _, f := range flows {
		dst, _ := netip.AddrFromSlice(f.Forward.DstIP)
		if dst.Unmap() == e.PublicHost4 && f.Forward.DstPort == echoPort {
			if int(f.Forward.SrcPort) != protPort {
				t.Errorf("conntrack entry of a cut flow left: %v", f)
			} else {
				found = true
			}
		}
	}
	if !found {
		t.Error("the conntrack entry of the protected connection is gone")
	}
	leak.SetDeadline(time.Now().Add(probeTimeout))
	buf := make([]byte, 64)
	_, werr := leak.Write([]byte("after"))
	_, rerr := leak.Read(buf)
	if werr == nil && rerr == nil {
		t.Error("the connection opened outside the tunnel still works")
	} else if got := classify(errors.Join(werr, rerr)); got == timedOut {
		t.Errorf("the connection opened outside the tunnel timed out instead of failing: %v %v", werr, rerr)
	}
	for name, c := range map[string]net.Conn{"protected": prot, "tunnel": tunc} {
		c.SetDeadline(time.Now().Add(probeTimeout))
		if _, err := c.Write([]byte("still")); err != nil {
			t.Errorf("%s connection: %v", name, err)
			continue
		}
		if _, err := c.Read(buf); err != nil {
			t.Errorf("%s connection: %v", name, err)
		}
	}
	if err := m.Set(nil); err != nil {
		t.Fatal(err)
	}
}

// TestCrashAndTakeOver leaves the table behind as a daemon killed with
// SIGKILL would, checks that it still protects, that a new Manager finds it
// and takes it over, and that removing it leaves the namespace, nftables
// included, as it was, with foreign tables untouched.
func TestCrashAndTakeOver(t *testing.T) {
	e := newEnv(t)
	addForeignTables(t, e.Client)
	before := e.Client.Snapshot(t)
	foreign := foreignRules(t, e.Client)

	tun := tunnel()
	tun.IncludeAllNetworks = true
	cfg := &Config{Tunnels: []Tunnel{tun}}
	m1, err := New(Options{NetNS: e.Client.Handle()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m1.Set(cfg); err != nil {
		t.Fatal(err)
	}
	m1.Close() // the daemon dies: the table stays

	if got := probeUDP(e.Client, netip.AddrPortFrom(e.PublicHost4, echoPort), sockOpts{}); got != rejected {
		t.Errorf("UDP with the daemon down: %s, want rejected", got)
	}
	m2 := e.manager(t)
	if ok, err := m2.Exists(); err != nil || !ok {
		t.Fatalf("Exists after the crash = %v, %v; want true", ok, err)
	}
	cfg.Tunnels[0].ExcludeLocalNetworks = true
	if err := m2.Set(cfg); err != nil {
		t.Fatal(err)
	}
	if got := probeUDP(e.Client, netip.AddrPortFrom(e.PublicHost4, echoPort), sockOpts{}); got != rejected {
		t.Errorf("UDP after the take-over: %s, want rejected", got)
	}
	if diff := cmp.Diff(foreignRules(t, e.Client), foreign); diff != "" {
		t.Errorf("foreign tables changed (-got +want):\n%s", diff)
	}
	if err := m2.Remove(); err != nil {
		t.Fatal(err)
	}
	if ok, err := m2.Exists(); err != nil || ok {
		t.Errorf("Exists after Remove = %v, %v; want false", ok, err)
	}
	if err := m2.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if got := probeUDP(e.Client, netip.AddrPortFrom(e.PublicHost4, echoPort), sockOpts{}); got != passed {
		t.Errorf("UDP after Remove: %s, want passed", got)
	}
	if diff := cmp.Diff(e.Client.Snapshot(t), before); diff != "" {
		t.Errorf("namespace after Remove (-got +want):\n%s", diff)
	}
}

// trackConnections makes conntrack follow the namespace's connections from
// now on, as any ruleset using conntrack does on a real host, through a
// table of another owner that only looks at the state.
func trackConnections(t *testing.T, ns *nettest.NS) {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Handle())))
	if err != nil {
		t.Fatal(err)
	}
	tb := c.AddTable(&nftables.Table{Name: "tracker", Family: nftables.TableFamilyINet})
	ch := c.AddChain(&nftables.Chain{Name: "output", Table: tb, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter})
	c.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: []expr.Any{&expr.Ct{Key: expr.CtKeySTATE, Register: 1}}})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
}

// addForeignTables adds tables that are not ours: one of another family with
// our name, one netext-like name in inet, and a filter table with a rule.
func addForeignTables(t *testing.T, ns *nettest.NS) {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Handle())))
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range []*nftables.Table{
		{Name: DefaultTableName, Family: nftables.TableFamilyIPv4},
		{Name: DefaultTableName + "2", Family: nftables.TableFamilyINet},
		{Name: "filter", Family: nftables.TableFamilyINet},
	} {
		c.AddTable(tb)
		ch := c.AddChain(&nftables.Chain{Name: "output", Table: tb, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter})
		c.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept}}})
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
}

// foreignRules lists every table but ours with its chains and rule
// expressions (counters zeroed, as they count).
func foreignRules(t *testing.T, ns *nettest.NS) []string {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Handle())))
	if err != nil {
		t.Fatal(err)
	}
	chains, err := c.ListChains()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ch := range chains {
		if ch.Table.Name == DefaultTableName && ch.Table.Family == nftables.TableFamilyINet {
			continue
		}
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ch.Table.Name+"/"+ch.Name)
		for _, r := range rules {
			out = append(out, ch.Table.Name+"/"+ch.Name+fmt.Sprintf(" rule with %d expressions", len(r.Exprs)))
		}
	}
	return out
}

// TestRulesListed installs a configuration that uses every kind of rule
// and compares `nft list table` with testdata/full.nft (counters left out).
// Without nft, the rules are read back through the library instead.
func TestRulesListed(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.NewNS(t)
	ns.AddDummy(t, tunName)
	m, err := New(Options{NetNS: ns.Handle()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cfg := fullConfig()
	if err := m.Set(cfg); err != nil {
		t.Fatal(err)
	}
	p, _ := compile(cfg, netcfg.DefaultMark, netcfg.DefaultMark)
	var want []Counter
	for _, c := range p.chains {
		for _, r := range c.rules {
			want = append(want, Counter{Chain: c.name, Rule: r.comment})
		}
	}
	got, err := m.Counters()
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i].Packets, got[i].Bytes = 0, 0
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("rules read back (-got +want):\n%s", diff)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Log("nft not installed: listing not compared")
	} else {
		text := ns.Run(t, "nft", "list", "table", "inet", DefaultTableName)
		text = regexp.MustCompile(`counter packets \d+ bytes \d+`).ReplaceAllString(text, "counter")
		golden(t, "testdata/full.nft", text)
	}
	if err := m.Set(nil); err != nil {
		t.Fatal(err)
	}
	if ok, _ := m.Exists(); ok {
		t.Error("table still there after Set(nil)")
	}
	if _, err := exec.LookPath("nft"); err == nil {
		if got := strings.TrimSpace(ns.Run(t, "nft", "list", "ruleset")); got != "" {
			t.Errorf("ruleset after Set(nil):\n%s", got)
		}
	}
}

// TestZeroNetNS checks that Options without NetNS work in the namespace of
// the calling thread, as netextd uses them, and LocalNetworks too.
func TestZeroNetNS(t *testing.T) {
	nettest.RequireRoot(t)
	ns := nettest.NewNS(t)
	ns.AddDummy(t, "lan0")
	ns.AddAddr(t, "lan0", "192.0.2.7/24")
	var (
		m     *Manager
		local []netip.Prefix
	)
	if err := ns.Do(func() error {
		var err error
		if m, err = New(Options{}); err != nil {
			return err
		}
		local, err = LocalNetworks(Options{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if diff := cmp.Diff(local, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("LocalNetworks (-got +want):\n%s", diff)
	}
	if err := m.Set(&Config{Tunnels: []Tunnel{{Interface: tunName, IncludeAllNetworks: true}}}); err != nil {
		t.Fatal(err)
	}
	inNS, err := New(Options{NetNS: ns.Handle()})
	if err != nil {
		t.Fatal(err)
	}
	defer inNS.Close()
	if ok, err := inNS.Exists(); err != nil || !ok {
		t.Errorf("table in the namespace: %v, %v; want it there", ok, err)
	}
	if err := m.Set(nil); err != nil {
		t.Fatal(err)
	}
}
