package wireguard

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/internal/sessionhost"
	"github.com/netext/netext/internal/testproc"
	"github.com/netext/netext/netcfg"
	"github.com/netext/netext/tun"
)

// The interop test's tunnel: an unmodified wireguard-go device on a real
// TUN interface in the topology's server namespace, and the provider,
// started by a real session host in the client namespace.
const (
	wgPort    = 51820
	clientDev = "wgc0" // the session's device
	serverDev = "wgs0" // the server's device
	tunnelMTU = 1420
)

var (
	serverTunnel4 = netip.MustParsePrefix("10.99.0.1/24")
	serverTunnel6 = netip.MustParsePrefix("fd99::1/64")
	clientTunnel4 = netip.MustParsePrefix("10.99.0.2/24")
	clientTunnel6 = netip.MustParsePrefix("fd99::2/64")
)

// hostEnv carries a child session host's configuration (package
// sessionhost).
const hostEnv = "NETEXT_WIREGUARD_TEST_HOST"

func init() {
	testChild = func() (int, bool) { return sessionhost.Main(hostEnv) }
}

// wgServer runs an unmodified wireguard-go device with its own StdNetBind
// on a real TUN interface in ns, configured through its UAPI, until t
// ends. Its peer is client, allowed the client's tunnel addresses.
func wgServer(t *testing.T, ns *nettest.NS, keys keyPair, client wgtypes.Key, psk wgtypes.Key) {
	t.Helper()
	var td tun.Device
	if err := ns.Do(func() (err error) {
		td, err = tun.Create(tun.Options{Name: serverDev})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// The MTU first: the device reads it once, and our TUN devices send
	// no MTU events.
	ns.Run(t, "ip", "link", "set", serverDev, "mtu", strconv.Itoa(tunnelMTU), "up")
	logf := func(format string, args ...any) { t.Logf("server: "+format, args...) }
	dev := device.NewDevice(td, conn.NewStdNetBind(), &device.Logger{Verbosef: device.DiscardLogf, Errorf: logf})
	t.Cleanup(dev.Close)
	err := ns.Do(func() error {
		err := dev.IpcSet(fmt.Sprintf("private_key=%s\nlisten_port=%d\npublic_key=%s\npreshared_key=%s\nallowed_ip=%s\nallowed_ip=%s\n",
			hex.EncodeToString(keys.priv[:]), wgPort, hex.EncodeToString(client[:]), hex.EncodeToString(psk[:]),
			netip.PrefixFrom(clientTunnel4.Addr(), 32), netip.PrefixFrom(clientTunnel6.Addr(), 128)))
		if err != nil {
			return err
		}
		return dev.Up() // opens the sockets, in ns
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.AddAddr(t, serverDev, serverTunnel4.String())
	ns.AddAddr(t, serverDev, serverTunnel6.String())
}

// TestInteropWithWireguardGo runs the provider as netextd does, through a
// session host with the real device and netcfg, unprivileged, against an
// unmodified wireguard-go server, with the default routes of both families
// in the tunnel: it pings the server and a host behind it over IPv4 and
// IPv6, moves TCP data both ways, reads the stats, and checks that the
// stop leaves the client namespace as it was. It runs with the server's
// IPv4 underlay address and with its IPv6 one.
func TestInteropWithWireguardGo(t *testing.T) {
	nettest.RequireRoot(t)
	bins, err := testproc.Build(testproc.Dir(t), "github.com/netext/netext/cmd/netext-provider-wireguard")
	if err != nil {
		t.Fatal(err)
	}
	for _, underlay6 := range []bool{false, true} {
		name := "ipv4"
		if underlay6 {
			name = "ipv6"
		}
		t.Run(name, func(t *testing.T) { testInterop(t, bins[0], underlay6) })
	}
}

func testInterop(t *testing.T, providerPath string, underlay6 bool) {
	tp := nettest.NewTopology(t)
	// The server forwards between its tunnel and the internet, which
	// routes the tunnel's networks back to it.
	tp.Server.Sysctl(t, "ipv4/ip_forward", "1")
	tp.Server.Sysctl(t, "ipv6/conf/all/forwarding", "1")
	tp.Internet.Run(t, "ip", "-4", "route", "add", serverTunnel4.Masked().String(), "via", tp.ServerAddr4.Addr().String())
	tp.Internet.Run(t, "ip", "-6", "route", "add", serverTunnel6.Masked().String(), "via", tp.ServerAddr6.Addr().String())

	serverKeys, clientKeys := newKeyPair(t), newKeyPair(t)
	psk, err := wgtypes.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	wgServer(t, tp.Server, serverKeys, clientKeys.pub, psk)
	endpoint := netip.AddrPortFrom(tp.ServerAddr4.Addr(), wgPort)
	if underlay6 {
		endpoint = netip.AddrPortFrom(tp.ServerAddr6.Addr(), wgPort)
	}

	for _, dst := range []netip.Addr{tp.ServerAddr4.Addr(), tp.ServerAddr6.Addr()} {
		tp.Client.WaitPing(t, dst, 15*time.Second)
	}
	tp.Client.WaitNoTentative(t)
	before := tp.Client.Snapshot(t)

	pc, err := json.Marshal(map[string]any{
		"addresses": []string{clientTunnel4.String(), clientTunnel6.String()},
		"mtu":       tunnelMTU,
		"peers": []any{map[string]any{
			"publicKey":  serverKeys.pub.String(),
			"allowedIPs": []string{"0.0.0.0/0", "::/0"},
			"endpoint":   endpoint.String(),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	secret := fmt.Sprintf(`{"privateKey": %q, "presharedKeys": {%q: %q}}`, clientKeys.priv, serverKeys.pub, psk)
	uid, gid := testproc.User()
	h := sessionhost.Start(t, tp.Client, hostEnv, sessionhost.Config{
		Name:       "wireguard",
		Provider:   providerPath,
		UID:        uid,
		GID:        gid,
		Env:        []string{"NETEXT_PROVIDER_LOG_LEVEL=debug"},
		DeviceName: clientDev,
		StateDir:   t.TempDir(),
		Configuration: providerproto.Configuration{
			ID:                    "wireguard",
			Name:                  "WireGuard interop",
			ProviderConfiguration: pc,
			Secret:                providerproto.Secret(secret),
		},
	})
	r := h.Call(t, "start")
	if r.Err != "" || r.State != "connected" || r.PID == 0 {
		t.Fatalf("start: %+v, want connected", r)
	}
	pid := r.PID
	t.Run("unprivileged", func(t *testing.T) { testproc.CheckUnprivileged(t, pid) })

	t.Run("routes", func(t *testing.T) {
		// Everything takes the tunnel but the provider's own (protected,
		// marked) datagrams.
		for _, dst := range []netip.Addr{tp.PublicHost4, tp.PublicHost6, endpoint.Addr()} {
			for _, c := range []struct {
				mark uint32
				dev  string
			}{{0, clientDev}, {netcfg.DefaultMark, "eth0"}} {
				got, err := tp.Client.RouteGet(dst, c.mark)
				if err != nil || got.Dev != c.dev {
					t.Errorf("route to %v with mark %#x: %v %v, want dev %s", dst, c.mark, got, err, c.dev)
				}
			}
		}
	})

	t.Run("ping", func(t *testing.T) {
		for _, dst := range []netip.Addr{serverTunnel4.Addr(), serverTunnel6.Addr(), tp.PublicHost4, tp.PublicHost6} {
			tp.Client.WaitPing(t, dst, 10*time.Second)
		}
	})

	t.Run("tcp", func(t *testing.T) {
		for _, dst := range []netip.Addr{serverTunnel4.Addr(), serverTunnel6.Addr()} {
			up, down := tcpTransfer(t, tp.Client, tp.Server, dst, 32<<20)
			t.Logf("TCP to %v through the tunnel: %.0f Mbit/s up, %.0f Mbit/s down (32 MiB each way)", dst, up, down)
		}
	})

	t.Run("stats", func(t *testing.T) {
		r := h.Call(t, "stats")
		if r.Err != "" {
			t.Fatal(r.Err)
		}
		var st Stats
		if err := json.Unmarshal(r.Data, &st); err != nil {
			t.Fatalf("%v: %s", err, r.Data)
		}
		if len(st.Peers) != 1 {
			t.Fatalf("stats %s", r.Data)
		}
		p := st.Peers[0]
		if p.PublicKey != serverKeys.pub.String() || p.Endpoint != endpoint.String() || p.LastHandshake.IsZero() ||
			p.TxBytes < 64<<20 || p.RxBytes < 64<<20 {
			t.Errorf("peer stats %+v: want %s at %v, a handshake, and at least 64 MiB each way", p, serverKeys.pub, endpoint)
		}
		t.Logf("transport: %+v", st.Transport)
	})

	if hwm, err := peakRSS(pid); err == nil {
		t.Logf("provider peak RSS: %s", hwm)
	}

	r = h.Call(t, "stop")
	if r.Err != "" || r.State != "disconnected" {
		t.Fatalf("stop: %+v, want disconnected", r)
	}
	waitGone(t, pid)
	if diff := cmp.Diff(before, tp.Client.Snapshot(t)); diff != "" {
		t.Errorf("client namespace changed (-before +after):\n%s", diff)
	}
	if strings.Contains(h.Log(), clientKeys.priv.String()) || strings.Contains(h.Log(), psk.String()) {
		t.Error("a secret key appears in the host's or the provider's log")
	}
}

// tcpTransfer sends size bytes from client to server and then back over
// TCP to dst (an address of server), and returns the rates in Mbit/s.
func tcpTransfer(t *testing.T, client, server *nettest.NS, dst netip.Addr, size int64) (up, down float64) {
	t.Helper()
	var ln net.Listener
	if err := server.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(dst, 0).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		n   int64
		err error
	}
	served := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		n, err := io.CopyN(io.Discard, c, size)
		if err == nil {
			_, err = io.CopyN(c, zeroReader{}, size)
		}
		served <- result{n, err}
	}()
	var c net.Conn
	if err := client.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	start := time.Now()
	if _, err := io.CopyN(c, zeroReader{}, size); err != nil {
		t.Fatalf("sending: %v", err)
	}
	mid := time.Now()
	if _, err := io.CopyN(io.Discard, c, size); err != nil {
		t.Fatalf("receiving: %v", err)
	}
	end := time.Now()
	if r := <-served; r.err != nil || r.n != size {
		t.Fatalf("server: %d bytes, %v", r.n, r.err)
	}
	mbit := func(d time.Duration) float64 { return float64(size) * 8 / d.Seconds() / 1e6 }
	// The first half ends when the data is sent, not received: near
	// enough with 32 MiB against socket buffers of a few.
	return mbit(mid.Sub(start)), mbit(end.Sub(mid))
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// peakRSS returns the VmHWM line of process pid.
func peakRSS(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("no VmHWM for %d", pid)
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
