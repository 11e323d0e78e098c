package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/internal/sessionhost"
	"github.com/netext/netext/internal/testproc"
	"github.com/netext/netext/netcfg"
	"github.com/netext/netext/providers/sample"
	"github.com/netext/netext/session"
)

// The sample tunnel's addresses and names.
const (
	serverPort = 51900
	tunnelDev  = "e2etun0" // the session's device in the client namespace
	serverDev  = "sample0" // the server's device
)

var (
	serverTunnel4 = netip.MustParsePrefix("10.99.0.1/24")
	serverTunnel6 = netip.MustParsePrefix("fd99::1/64")
	clientTunnel4 = netip.MustParsePrefix("10.99.0.2/24")
	clientTunnel6 = netip.MustParsePrefix("fd99::2/64")
)

// tunnelMTU is the MTU of both ends of the tunnel.
const tunnelMTU = 1420

// nobody is the user the provider runs as.
const nobody = 65534

// transferSize is how much TCP data crosses the tunnel each way.
const transferSize = 8 << 20

// TestSampleTunnel runs the sample protocol end to end: the sample server
// on a real TUN interface in the topology's server namespace, which also
// forwards between its tunnel and the internet; a session host with the
// real launcher, device and netcfg in the client namespace, running the
// sample provider as nobody with the default routes of both families in
// the tunnel. It checks reachability and data through the tunnel, where
// the provider's own packets go, that the provider has no privilege, an
// app message, and that Stop leaves the client namespace as it was; then
// a second start, whose provider is killed, which must leave the
// namespace as it was too. It
// runs once with the server's IPv4 underlay address and once with its IPv6
// one, and once more with a tunnel device without offloads.
func TestSampleTunnel(t *testing.T) {
	nettest.RequireRoot(t)
	for _, tc := range []struct {
		name       string
		underlay6  bool
		noOffloads bool
	}{
		{name: "ipv4"},
		{name: "ipv6", underlay6: true},
		{name: "ipv4-no-offloads", noOffloads: true},
	} {
		t.Run(tc.name, func(t *testing.T) { testSampleTunnel(t, tc.underlay6, tc.noOffloads) })
	}
}

// testSampleTunnel runs the test with the server's IPv6 underlay address
// or its IPv4 one, and with a tunnel device with or without offloads.
func testSampleTunnel(t *testing.T, underlay6, noOffloads bool) {
	providerPath, serverPath := executables(t)
	tp := nettest.NewTopology(t)

	// The server forwards between its tunnel and the internet, which
	// routes the tunnel's networks back to it: no NAT needed.
	tp.Server.Sysctl(t, "ipv4/ip_forward", "1")
	tp.Server.Sysctl(t, "ipv6/conf/all/forwarding", "1")
	tp.Internet.Run(t, "ip", "-4", "route", "add", serverTunnel4.Masked().String(), "via", tp.ServerAddr4.Addr().String())
	tp.Internet.Run(t, "ip", "-6", "route", "add", serverTunnel6.Masked().String(), "via", tp.ServerAddr6.Addr().String())

	key, err := sample.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	server := netip.AddrPortFrom(tp.ServerAddr4.Addr(), serverPort)
	if underlay6 {
		server = netip.AddrPortFrom(tp.ServerAddr6.Addr(), serverPort)
	}
	startServer(t, tp.Server, serverPath, key, server)

	// IPv6 across the topology works once duplicate address detection of
	// the link-local addresses is over; the snapshot must not see that
	// happen either.
	for _, dst := range []netip.Addr{tp.ServerAddr4.Addr(), tp.ServerAddr6.Addr()} {
		tp.Client.WaitPing(t, dst, 15*time.Second)
	}
	tp.Client.WaitNoTentative(t)
	before := tp.Client.Snapshot(t)

	pc, err := json.Marshal(map[string]any{
		"addresses": []string{clientTunnel4.String(), clientTunnel6.String()},
		"routes":    []string{"0.0.0.0/0", "::/0"},
		"mtu":       tunnelMTU,
	})
	if err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	h := sessionhost.Start(t, tp.Client, hostEnv, sessionhost.Config{
		Name:       "e2e",
		Provider:   providerPath,
		UID:        nobody,
		GID:        nobody,
		DeviceName: tunnelDev,
		StateDir:   stateDir,
		NoOffloads: noOffloads,
		Configuration: providerproto.Configuration{
			ID:                    "e2e",
			Name:                  "End to end",
			ProviderConfiguration: pc,
			ServerAddress:         server.String(),
			Secret:                providerproto.Secret(key.Base64()),
		},
	})

	r := h.Call(t, "start")
	if r.Err != "" || r.State != "connected" {
		t.Fatalf("start: %+v, want connected", r)
	}
	pid := r.PID
	if pid == 0 {
		t.Fatal("start: no provider pid")
	}

	t.Run("unprivileged", func(t *testing.T) { testproc.CheckUnprivileged(t, pid) })

	t.Run("routes", func(t *testing.T) {
		// Everything takes the tunnel, except the provider's own
		// (protected, marked) packets to the server.
		for _, dst := range []netip.Addr{tp.PublicHost4, tp.PublicHost6, tp.ServerAddr4.Addr(), tp.ServerAddr6.Addr()} {
			checkRoute(t, tp.Client, dst, 0, tunnelDev)
			checkRoute(t, tp.Client, dst, netcfg.DefaultMark, "eth0")
		}
	})

	t.Run("ping", func(t *testing.T) {
		for _, dst := range []netip.Addr{serverTunnel4.Addr(), serverTunnel6.Addr(), tp.PublicHost4, tp.PublicHost6} {
			// The tunnel's IPv6 address may need a moment, so wait.
			tp.Client.WaitPing(t, dst, 10*time.Second)
		}
	})

	t.Run("tcp", func(t *testing.T) { checkTCP(t, tp, server, noOffloads) })

	t.Run("stats", func(t *testing.T) {
		r := h.Call(t, "stats")
		if r.Err != "" {
			t.Fatalf("app message stats: %s", r.Err)
		}
		var st sample.Stats
		if err := json.Unmarshal(r.Data, &st); err != nil {
			t.Fatalf("app message stats: %v in %s", err, r.Data)
		}
		if st.Peer != server.String() || st.Handshakes != 1 || st.TxBytes < transferSize || st.RxBytes < transferSize ||
			st.DroppedAuth != 0 || st.DroppedMalformed != 0 || st.DroppedReplay != 0 {
			t.Errorf("provider stats %+v: want peer %v, 1 handshake, at least %d bytes each way, nothing dropped", st, server, transferSize)
		}
	})

	r = h.Call(t, "stop")
	if r.Err != "" || r.State != "disconnected" || r.LastError != "" {
		t.Fatalf("stop: %+v, want disconnected without error", r)
	}
	waitGone(t, pid)
	if diff := cmp.Diff(before, tp.Client.Snapshot(t)); diff != "" {
		t.Errorf("client namespace changed (-before +after):\n%s", diff)
	}

	// A second start runs a fresh provider, which the server takes as a
	// new session; killing it ends the session with the matching error,
	// and the namespace is restored again.
	r = h.Call(t, "start")
	if r.Err != "" || r.State != "connected" || r.PID == pid || r.PID == 0 {
		t.Fatalf("second start: %+v, want connected with a new provider (the first was %d)", r, pid)
	}
	pid = r.PID
	tp.Client.WaitPing(t, serverTunnel4.Addr(), 10*time.Second)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for r = h.Call(t, "status"); r.State != "disconnected"; r = h.Call(t, "status") {
		if time.Now().After(deadline) {
			t.Fatalf("session after the provider was killed: %+v, want disconnected", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r.LastCode != string(session.CodeProviderExited) || !strings.Contains(r.LastError, "while connected") {
		t.Errorf("session after the provider was killed: %+v, want code %s while connected", r, session.CodeProviderExited)
	} else {
		t.Logf("after the provider was killed: %s (%s)", r.LastError, r.LastCode)
	}
	waitGone(t, pid)
	if diff := cmp.Diff(before, tp.Client.Snapshot(t)); diff != "" {
		t.Errorf("client namespace changed after the provider was killed (-before +after):\n%s", diff)
	}
	if err := h.Close(); err != nil {
		t.Errorf("session host: %v", err)
	}
	if entries, _ := os.ReadDir(stateDir); len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("netcfg state left behind: %v", names)
	}
}

// waitGone waits until process pid has exited and been reaped.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("provider %d still exists after its session ended", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startServer runs netext-sample-server in ns until t's cleanup, and
// returns once it listens.
func startServer(t *testing.T, ns *nettest.NS, path string, key sample.Key, listen netip.AddrPort) {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(key.Base64()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command(context.Background(), path, "-listen", listen.String(), "-key-file", keyFile, "-tun", serverDev,
		"-address", serverTunnel4.String(), "-address", serverTunnel6.String(), "-log-level", "debug")
	testproc.Start(t, "sample server", cmd).WaitOutput(t, "sample server: listening", 20*time.Second)
}

func checkRoute(t *testing.T, ns *nettest.NS, dst netip.Addr, mark uint32, dev string) {
	t.Helper()
	r, err := ns.RouteGet(dst, mark)
	if err != nil {
		t.Errorf("route to %v mark %#x: %v", dst, mark, err)
		return
	}
	if r.Type != "unicast" || r.Dev != dev {
		t.Errorf("route to %v mark %#x: %v, want dev %s", dst, mark, r, dev)
	}
}

// checkTCP moves transferSize bytes each way over TCP between the client
// namespace and the server's tunnel address, checks them byte for byte,
// and checks where the packets went: plain TCP on the client's tunnel
// device, only the tunnel protocol's UDP on its underlay.
//
// Without offloads no packet on the tunnel device may be larger than its
// MTU; with them, segmentation super-packets are likely but not certain.
func checkTCP(t *testing.T, tp *nettest.Topology, server netip.AddrPort, noOffloads bool) {
	var ln net.Listener
	if err := tp.Server.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(serverTunnel4.Addr(), 0).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lnAddr := netip.MustParseAddrPort(ln.Addr().String())

	eth, tunnel := startCapture(t, tp.Client, "eth0"), startCapture(t, tp.Client, tunnelDev)
	before := linkStats(t, tp.Client)

	var client net.Conn
	if err := tp.Client.Do(func() (err error) {
		d := net.Dialer{Timeout: 10 * time.Second}
		client, err = d.Dial("tcp", lnAddr.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	deadline := time.Now().Add(60 * time.Second)
	client.SetDeadline(deadline)
	peer.SetDeadline(deadline)
	transfer(t, "client to server", client, peer, 1)
	transfer(t, "server to client", peer, client, 2)

	after := linkStats(t, tp.Client)
	eth.Stop()
	tunnel.Stop()
	for _, c := range []*capture{eth, tunnel} {
		if err := c.Err(); err != nil {
			t.Fatalf("capture: %v", err)
		}
	}

	// The kernel's counters: the tunnel device carried the data, and so
	// did the underlay, each way.
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"eth0 tx bytes", after.eth0.TxBytes - before.eth0.TxBytes, transferSize},
		{"eth0 rx bytes", after.eth0.RxBytes - before.eth0.RxBytes, transferSize},
		{tunnelDev + " tx bytes", after.tunnel.TxBytes - before.tunnel.TxBytes, transferSize},
		{tunnelDev + " rx bytes", after.tunnel.RxBytes - before.tunnel.RxBytes, transferSize},
	} {
		if c.got < c.want {
			t.Errorf("%s grew by %d during the transfer, want at least %d", c.name, c.got, c.want)
		}
	}

	// What crossed the links. The packet sockets may drop packets under
	// load, so the byte counts above come from the kernel's counters and
	// the captures only have to see each kind of packet, or none.
	isConn := func(f flow) bool {
		return f.Proto == unix.IPPROTO_TCP && (f.Dst == lnAddr || f.Src == lnAddr)
	}
	toServer := func(f flow) bool { return f.Out && f.Proto == unix.IPPROTO_UDP && f.Dst == server }
	fromServer := func(f flow) bool { return !f.Out && f.Proto == unix.IPPROTO_UDP && f.Src == server }
	for _, c := range []struct {
		name    string
		cap     *capture
		match   func(flow) bool
		present bool
	}{
		{"eth0: tunnel protocol to the server", eth, toServer, true},
		{"eth0: tunnel protocol from the server", eth, fromServer, true},
		{"eth0: the TCP connection in the clear", eth, isConn, false},
		{tunnelDev + ": the TCP connection, out", tunnel, func(f flow) bool { return f.Out && isConn(f) }, true},
		{tunnelDev + ": the TCP connection, in", tunnel, func(f flow) bool { return !f.Out && isConn(f) }, true},
		{tunnelDev + ": the tunnel protocol", tunnel, func(f flow) bool { return f.Src == server || f.Dst == server }, false},
	} {
		got := c.cap.count(c.match)
		if (got.Packets > 0) != c.present {
			t.Errorf("%s: %d packets (%d bytes), want them present: %v; all flows:\n%s", c.name, got.Packets, got.Bytes, c.present, c.cap)
		} else {
			t.Logf("%s: %d packets, %d bytes, the largest %d", c.name, got.Packets, got.Bytes, got.Largest)
		}
	}
	if largest := tunnel.count(isConn).Largest; noOffloads && largest > tunnelMTU {
		t.Errorf("%s without offloads carried a packet of %d bytes, more than its MTU %d", tunnelDev, largest, tunnelMTU)
	}
}

// transfer sends transferSize pseudo-random bytes from one end to the
// other and checks that they arrive unchanged.
func transfer(t *testing.T, name string, from, to net.Conn, seed byte) {
	t.Helper()
	data := make([]byte, transferSize)
	rand.NewChaCha8([32]byte{seed}).Read(data)
	werr := make(chan error, 1)
	go func() {
		_, err := from.Write(data)
		werr <- err
	}()
	got := make([]byte, transferSize)
	if _, err := io.ReadFull(to, got); err != nil {
		t.Fatalf("%s: reading: %v", name, err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("%s: writing: %v", name, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%s: the %d bytes received differ from those sent", name, transferSize)
	}
}

type counters struct{ TxBytes, RxBytes uint64 }

type clientLinks struct{ eth0, tunnel counters }

func linkStats(t *testing.T, ns *nettest.NS) clientLinks {
	t.Helper()
	get := func(name string) counters {
		l, err := ns.Netlink(t).LinkByName(name)
		if err != nil {
			t.Fatalf("link %s: %v", name, err)
		}
		s := l.Attrs().Statistics
		if s == nil {
			t.Fatalf("link %s: no statistics", name)
		}
		return counters{TxBytes: s.TxBytes, RxBytes: s.RxBytes}
	}
	return clientLinks{eth0: get("eth0"), tunnel: get(tunnelDev)}
}
