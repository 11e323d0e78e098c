package daemontest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/firewall"
)

// leakTest runs an application in the client namespace and measures what
// leaves outside the tunnel; it collects the rows of the scenario table
// of docs/leak-tests.md.
type leakTest struct {
	e    *env
	cap  *capture
	fw   *firewall.Manager // reads the counters of netextd's table
	rows []string
}

// check runs the application against dst and checks what it saw (want)
// and whether packets left outside the tunnel (outside: some must, as
// the scenario's design says; otherwise none may).
func (l *leakTest) check(t *testing.T, scenario string, dst netip.Addr, bindDev string, want probes, outside bool) {
	t.Helper()
	l.cap.take()
	rej0 := rejectedPackets(t, l.fw)
	got := application(l.e.tp.Client, dst, bindDev)
	pkts := l.cap.take()
	rej := rejectedPackets(t, l.fw)
	if rej >= rej0 {
		rej -= rej0
	}
	sent := "TCP, UDP, ICMP, DNS"
	if bindDev != "" {
		sent = "TCP, UDP, DNS bound to " + bindDev
	}
	row := fmt.Sprintf("| %s | %s to %s | %s | %d | %d |", scenario, sent, dst, got, len(pkts), rej)
	l.rows = append(l.rows, row)
	t.Log(row)
	if got != want {
		t.Errorf("%s: the application saw %v, want %v", scenario, got, want)
	}
	switch {
	case !outside && len(pkts) > 0:
		var ds []string
		for _, p := range pkts {
			ds = append(ds, p.desc)
		}
		t.Errorf("%s: %d packets leaked outside the tunnel:\n%s", scenario, len(pkts), strings.Join(ds, "\n"))
	case outside && len(pkts) == 0:
		t.Errorf("%s: no packet left outside the tunnel, want the traffic to go there", scenario)
	}
}

// snapshot checks that the client namespace is as it was before.
func (l *leakTest) snapshot(t *testing.T, when, before string) {
	t.Helper()
	if diff := cmp.Diff(before, l.e.tp.Client.Snapshot(t)); diff != "" {
		t.Errorf("client namespace %s (-before +after):\n%s", when, diff)
	}
}

// TestLeaks runs the scenario table of docs/leak-tests.md: netextd in the
// client namespace, the sample provider and server, and an application
// sending TCP, UDP, ICMP and DNS to the internet namespace, while a
// capture on the client's underlay link counts every packet that is not
// the provider's transport.
func TestLeaks(t *testing.T) {
	e := newEnv(t)
	installReassertProvider(t)
	tp := e.tp
	startPublicServices(t, tp)
	tp.Client.WaitPing(t, tp.PublicHost4, 10*time.Second)
	tp.Client.WaitPing(t, tp.PublicHost6, 10*time.Second)
	before := tp.Client.Snapshot(t)
	fw, err := firewall.New(firewall.Options{NetNS: tp.Client.Handle()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	l := &leakTest{e: e, cap: startCapture(t, tp.Client, "eth0", e.server), fw: fw}
	t.Cleanup(func() { t.Logf("scenario table:\n%s", strings.Join(l.rows, "\n")) })
	d := e.startDaemon()

	pub4, pub6, lan4 := tp.PublicHost4, tp.PublicHost6, tp.ClientGW4
	full4 := providerConfig(clientTunnel4, "0.0.0.0/0")
	includeAll := func(c *apitype.Configuration) { c.IncludeAllNetworks = true }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := func(name string) {
		t.Helper()
		e.mustNetext(cliOpts{}, "start", name)
		e.waitStatus(name, apitype.StatusConnected)
	}
	stop := func(name string) {
		t.Helper()
		e.mustNetext(cliOpts{}, "stop", name)
		e.waitStatus(name, apitype.StatusDisconnected)
	}

	l.check(t, "no session", pub4, "", all(answered), true)

	// The kill switch: includeAllNetworks with a full IPv4 tunnel.
	e.configure("killswitch", reassertID, full4, includeAll)

	// A TCP connection opened before the session started is cut when
	// protection engages, and sends nothing outside the tunnel after.
	var old net.Conn
	if err := tp.Client.Do(func() error {
		var err error
		old, err = net.DialTimeout("tcp", netip.AddrPortFrom(pub4, echoPort).String(), probeTimeout)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	old.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := old.Write([]byte("before\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Read(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	l.cap.take()
	start("killswitch")
	old.SetDeadline(time.Now().Add(probeTimeout))
	_, werr := old.Write([]byte("after\n"))
	_, rerr := old.Read(make([]byte, 64))
	oldOutcome := classify(werr)
	if werr == nil {
		oldOutcome = classify(rerr)
	}
	pkts := l.cap.take()
	row := fmt.Sprintf("| TCP connection opened before the session | data on it after the start | %s (%v) | %d | - |", oldOutcome, firstErr(werr, rerr), len(pkts))
	l.rows = append(l.rows, row)
	t.Log(row)
	if oldOutcome != rejected || len(pkts) != 0 {
		t.Errorf("connection opened before the session: write %v, read %v, %d packets outside the tunnel %v; want it cut and nothing outside", werr, rerr, len(pkts), pkts)
	}
	if !strings.Contains(d.log.String(), "leak protection cut flows") {
		t.Errorf("netextd did not log that it cut flows")
	}

	l.check(t, "connected", pub4, "", all(answered), false)
	l.check(t, "connected", pub6, "", all(rejected), false)

	if _, err := e.client.SendMessage(ctx, "killswitch", []byte("reassert")); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("killswitch", apitype.StatusReasserting)
	l.check(t, "reasserting", pub4, "", all(answered), false)
	if _, err := e.client.SendMessage(ctx, "killswitch", []byte("reasserted")); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("killswitch", apitype.StatusConnected)

	// The provider crashes: the session is disconnected, not stopped by
	// the user, so protection holds; a new start carries traffic again.
	killProviders(t)
	if st := e.waitStatus("killswitch", apitype.StatusDisconnected); !st.Blocking || st.BlockingReason != "includeAllNetworks" {
		t.Errorf("status after the provider crashed: %+v, want blocking by includeAllNetworks", st)
	}
	if out := e.mustNetext(cliOpts{}, "status", "killswitch"); !strings.Contains(out, "traffic blocked:") || !strings.Contains(out, "includeAllNetworks holds until you run `netext stop killswitch`") {
		t.Errorf("netext status killswitch after the provider crashed:\n%s\nwant the blocked traffic", out)
	}
	l.check(t, "provider killed (SIGKILL)", pub4, "", all(rejected), false)
	l.check(t, "provider killed (SIGKILL)", pub6, "", all(rejected), false)
	start("killswitch")
	l.check(t, "provider started again", pub4, "", all(answered), false)

	// netextd and the provider die: the table stays in the kernel, and
	// the restarted netextd takes it over.
	d.kill()
	killProviders(t)
	waitLinkGone(t, e, "netext0")
	l.check(t, "netextd killed (SIGKILL), provider gone", pub4, "", all(rejected), false)
	e.startDaemon()
	l.check(t, "netextd restarted", pub4, "", all(rejected), false)
	l.check(t, "netextd restarted", pub6, "", all(rejected), false)
	if st := e.waitStatus("killswitch", apitype.StatusDisconnected); st.LastError == nil || !strings.Contains(st.LastError.Message, "stopped unexpectedly") || !st.Blocking {
		t.Errorf("status after the restart: %+v, want the crash as last error, blocking", st)
	}
	if _, err := os.Stat(e.stateDir + "/protection.json"); err != nil {
		t.Errorf("leak protection record after the restart: %v", err)
	}

	// The user's stop lifts protection: traffic flows outside again and
	// the namespace is as before.
	e.mustNetext(cliOpts{}, "stop", "killswitch")
	if st := e.waitStatus("killswitch", apitype.StatusDisconnected); st.Blocking {
		t.Errorf("status after the user's stop: %+v, want no blocking", st)
	}
	l.check(t, "user stop", pub4, "", all(answered), true)
	l.snapshot(t, "after the user's stop", before)
	if _, err := os.Stat(e.stateDir + "/protection.json"); !os.IsNotExist(err) {
		t.Errorf("leak protection record after the user's stop: %v", err)
	}

	// A split tunnel whose settings include only the tunnel's own
	// subnet: includeAllNetworks routes all traffic into the tunnel
	// anyway, as Apple's does, instead of only rejecting what the
	// routes leave out.
	e.configure("split", sampleID, providerConfig(clientTunnel4, "10.99.0.0/24"), includeAll)
	start("split")
	l.check(t, "split tunnel, includeAllNetworks", pub4, "", all(answered), false)
	l.check(t, "split tunnel, includeAllNetworks", pub6, "", all(rejected), false)
	stop("split")
	l.snapshot(t, "after the split tunnel scenario", before)

	// A host on the LAN: through the tunnel, unless excludeLocalNetworks
	// keeps it local.
	e.configure("lan", sampleID, full4, includeAll)
	start("lan")
	l.check(t, "LAN host, includeAllNetworks", lan4, "", all(answered), false)
	stop("lan")
	e.configure("lan-local", sampleID, full4, func(c *apitype.Configuration) {
		c.IncludeAllNetworks, c.ExcludeLocalNetworks = true, true
	})
	start("lan-local")
	l.check(t, "LAN host, includeAllNetworks and excludeLocalNetworks", lan4, "", all(answered), true)
	l.check(t, "LAN host, includeAllNetworks and excludeLocalNetworks", pub4, "", all(answered), false)
	// The host joins another network: its subnet becomes local too.
	tp.Client.AddAddr(t, "eth0", "172.31.0.2/24")
	waitLocalNetwork(t, e, "172.31.0.0/24")
	tp.Client.Run(t, "ip", "addr", "del", "172.31.0.2/24", "dev", "eth0")
	stop("lan-local")
	l.snapshot(t, "after the LAN scenarios", before)

	// A full tunnel without any protection flag: a rogue DHCP server's
	// route for a public range (TunnelVision) does not pull traffic out
	// of the tunnel, and IPv6, which the tunnel does not carry, is
	// blocked.
	e.configure("full", sampleID, full4, nil)
	tp.Client.Run(t, "ip", "-4", "route", "add", "192.0.2.0/24", "via", lan4.String(), "dev", "eth0", "proto", "dhcp")
	start("full")
	l.check(t, "TunnelVision route 192.0.2.0/24 via the LAN", pub4, "", all(answered), false)
	l.check(t, "IPv4-only tunnel", pub6, "", all(rejected), false)
	stop("full")
	tp.Client.Run(t, "ip", "-4", "route", "del", "192.0.2.0/24", "via", lan4.String(), "dev", "eth0", "proto", "dhcp")
	l.snapshot(t, "after the TunnelVision scenario", before)

	// A LAN that claims the public host's subnet as its own (TunnelCrack
	// LocalNet). As on Apple's systems, a directly connected subnet wins
	// over the tunnel's routes; enforceRoutes makes the tunnel win, also
	// over sockets bound to the LAN interface; excludeLocalNetworks makes
	// the LAN local again, Apple's example.
	tp.Client.AddAddr(t, "eth0", "192.0.2.2/24")
	tp.Internet.AddAddr(t, "client0", "192.0.2.1/24")
	start("full")
	l.check(t, "LocalNet LAN claims 192.0.2.0/24", pub4, "", all(answered), true)
	stop("full")
	e.configure("enforce", sampleID, full4, func(c *apitype.Configuration) { c.EnforceRoutes = true })
	start("enforce")
	l.check(t, "LocalNet LAN, enforceRoutes", pub4, "", all(answered), false)
	l.check(t, "LocalNet LAN, enforceRoutes", pub4, "eth0", probes{rejected, rejected, "-", rejected}, false)
	stop("enforce")
	e.configure("enforce-local", sampleID, full4, func(c *apitype.Configuration) {
		c.EnforceRoutes, c.ExcludeLocalNetworks = true, true
	})
	start("enforce-local")
	l.check(t, "LocalNet LAN, enforceRoutes and excludeLocalNetworks", pub4, "", all(answered), true)
	stop("enforce-local")
	tp.Client.Run(t, "ip", "addr", "del", "192.0.2.2/24", "dev", "eth0")
	tp.Internet.Run(t, "ip", "addr", "del", "192.0.2.1/24", "dev", "client0")
	l.snapshot(t, "after the LocalNet scenarios", before)
}

// firstErr returns the first error that is not nil.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// killProviders kills every sample provider process with SIGKILL.
func killProviders(t *testing.T) {
	t.Helper()
	for _, exe := range []string{"reassertprovider", "netext-provider-sample"} {
		for _, pid := range pidsOf(t, exe) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// waitLinkGone waits until the client namespace has no link name.
func waitLinkGone(t *testing.T, e *env, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := e.tp.Client.Output("ip", "link", "show", name); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("link %s still there 20s after its provider was killed", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLocalNetwork waits until the local networks of netextd's table
// include prefix.
func waitLocalNetwork(t *testing.T, e *env, prefix string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := e.tp.Client.Output("nft", "list", "set", "inet", firewall.DefaultTableName, "local4")
		if err == nil && strings.Contains(out, prefix) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("local networks of the table do not include %s after 20s: %v\n%s", prefix, err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
