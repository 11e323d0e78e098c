package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/internal/testproc"
	"github.com/netext/netext/netcfg"
)

// The root tests run their session in a child test process inside a
// fresh namespace (see "Network namespaces" in the package
// documentation): the parent builds the namespaces, takes snapshots and
// checks what reached the other side; the child, one of the TestChild
// functions, hosts the session with the real device and netcfg.

// childEnv tells a TestChild function what to do; without it they skip.
const childEnv = "NETEXT_SESSION_TEST_CHILD"

// runChild runs test (a TestChild function) in ns with the value v for
// childEnv, and fails t with the child's output if it does not pass.
func runChild(t *testing.T, ns *nettest.NS, test, v string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := testproc.Child(ctx, ns, append(env, childEnv+"="+v, providerEnv+"="+providerPath, sdkProviderEnv+"="+sdkProviderPath, nettest.RequireRootEnv+"=1"),
		"-test.run=^"+test+"$", "-test.v", "-test.count=1", "-test.timeout=80s")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running %s: %v", test, err)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: "+test) {
		t.Fatalf("%s in the namespace failed (%v):\n%s", test, err, out)
	}
}

// childCase returns the value of childEnv, and skips t outside a child.
func childCase(t *testing.T) string {
	v := os.Getenv(childEnv)
	if v == "" {
		t.Skip("runs as the child of a namespace test")
	}
	return v
}

// underlay gives ns an interface with an address and a default route, so
// that there is something for a tunnel to take over.
func underlay(t *testing.T, ns *nettest.NS) {
	// No duplicate address detection: a link-local address that stops
	// being tentative would change the snapshot.
	ns.Sysctl(t, "ipv6/conf/default/accept_dad", "0")
	ns.Sysctl(t, "ipv6/conf/all/accept_dad", "0")
	ns.AddDummy(t, "eth0")
	ns.AddAddr(t, "eth0", "192.0.2.2/24")
	ns.AddAddr(t, "eth0", "2001:db8::2/64")
	ns.Run(t, "ip", "route", "add", "default", "via", "192.0.2.1")
	ns.Run(t, "ip", "-6", "route", "add", "default", "via", "2001:db8::1")
}

func TestNamespaceFaults(t *testing.T) {
	nettest.RequireRoot(t)
	for _, tc := range faultCases {
		t.Run(tc.name, func(t *testing.T) {
			ns := nettest.NewNS(t)
			underlay(t, ns)
			before := ns.Snapshot(t)
			runChild(t, ns, "TestChildFault", tc.name)
			if diff := cmp.Diff(before, ns.Snapshot(t)); diff != "" {
				t.Errorf("namespace changed (-before +after):\n%s", diff)
			}
		})
	}
}

func TestChildFault(t *testing.T) {
	name := childCase(t)
	i := slices.IndexFunc(faultCases, func(c faultCase) bool { return c.name == name })
	if i < 0 {
		t.Fatalf("no fault case %q", name)
	}
	runFault(t, faultCases[i], true)
}

const settingsFull = `{"tunnelRemoteAddress":"192.0.2.1",` +
	`"ipv4":{"addresses":["10.8.0.2/32"],"includedRoutes":[{"destination":"0.0.0.0/0"}]},` +
	`"ipv6":{"addresses":["fd00:8::2/128"],"includedRoutes":[{"destination":"::/0"}]},"mtu":1400}`

const probePort = 7777

// TestNamespaceDefaultRoute runs a provider that takes the default routes
// of both families, in the client namespace of a topology, and checks
// that its protected sockets reach the server over the underlay while
// everything else enters the tunnel.
func TestNamespaceDefaultRoute(t *testing.T) {
	nettest.RequireRoot(t)
	topo := nettest.NewTopology(t)
	var server net.PacketConn
	if err := topo.Server.Do(func() error {
		var err error
		server, err = net.ListenPacket("udp", fmt.Sprintf(":%d", probePort))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	// IPv6 across the topology works only once duplicate address
	// detection of the link-local addresses is over, about 2s.
	for _, dst := range []netip.Addr{topo.ServerAddr4.Addr(), topo.ServerAddr6.Addr()} {
		topo.Client.WaitPing(t, dst, 15*time.Second)
	}
	topo.Client.WaitNoTentative(t)
	before := topo.Client.Snapshot(t)

	runChild(t, topo.Client, "TestChildDefaultRoute", "default-route",
		"SERVER4="+netip.AddrPortFrom(topo.ServerAddr4.Addr(), probePort).String(),
		"SERVER6="+netip.AddrPortFrom(topo.ServerAddr6.Addr(), probePort).String())

	if diff := cmp.Diff(before, topo.Client.Snapshot(t)); diff != "" {
		t.Errorf("client namespace changed (-before +after):\n%s", diff)
	}
	// The datagrams are waiting in the server's socket by now.
	var got []string
	buf := make([]byte, 1500)
	for {
		_ = server.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, from, err := server.ReadFrom(buf)
		if err != nil {
			break
		}
		got = append(got, fmt.Sprintf("%s from %s", buf[:n], from.(*net.UDPAddr).AddrPort().Addr().Unmap()))
	}
	slices.Sort(got)
	want := []string{
		"protected from " + topo.ClientAddr6.Addr().String(),
		"protected from " + topo.ClientAddr4.Addr().String(),
	}
	slices.Sort(want)
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("datagrams at the server (-got +want):\n%s", diff)
	}
}

func TestChildDefaultRoute(t *testing.T) {
	childCase(t)
	h := newHarness(t, harnessOptions{real: true, settings: settingsFull, protect: []string{"udp4", "udp6"}, args: []string{"-vnethdr"}})
	h.mustStart()

	// The provider runs without privilege.
	testproc.CheckUnprivileged(t, h.providerPID())

	info := h.mustCommand(map[string]any{"cmd": "info"})
	if info.Tunnel == nil || !info.Tunnel.Offloads.VnetHdr || info.Tunnel.MTU != 1400 || info.Tunnel.Index == 0 {
		t.Fatalf("tunnel %+v", info.Tunnel)
	}
	dev := info.Tunnel.Name
	mark := fmt.Sprintf("%#x", netcfg.DefaultMark)
	for _, v := range []string{"SERVER4", "SERVER6"} {
		server := netip.MustParseAddrPort(os.Getenv(v))
		dst := server.Addr().String()
		// Unmarked traffic takes the tunnel, marked traffic the
		// underlay.
		if out := runCmd(t, "ip", "-o", "route", "get", dst); !strings.Contains(out, "dev "+dev+" ") {
			t.Errorf("route to %s: %s, want dev %s", dst, out, dev)
		}
		if out := runCmd(t, "ip", "-o", "route", "get", dst, "mark", mark); !strings.Contains(out, "dev eth0 ") {
			t.Errorf("route to %s with mark %s: %s, want dev eth0", dst, mark, out)
		}
		res := h.mustCommand(map[string]any{"cmd": "probe", "server": server.String()})
		if res.Code != "" || !res.TunSaw {
			t.Errorf("probe %s: %+v; want the unprotected datagram in the tunnel", server, res)
		}
	}
	h.stop(providerproto.StopUserInitiated)
	if st := h.s.Status(); st.State != Disconnected || st.LastError != nil {
		t.Errorf("status after Stop: %+v", st)
	}
}

func runCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
