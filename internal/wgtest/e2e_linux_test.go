package wgtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/internal/testproc"
	"github.com/netext/netext/netcfg"
)

// The tunnel's addresses and the server's port.
var (
	serverTunnel4 = netip.MustParsePrefix("10.99.0.1/24")
	serverTunnel6 = netip.MustParsePrefix("fd99::1/64")
	clientTunnel4 = netip.MustParsePrefix("10.99.0.2/32")
	clientTunnel6 = netip.MustParsePrefix("fd99::2/128")
)

const (
	wgPort    = 51820
	tunnelMTU = 1420
)

// TestImportStartStop is the walk through: an unmodified
// wireguard-go server, netextd and the provider in the client namespace, a
// wg-quick file with IPv4 and IPv6 addresses, DNS and both default routes
// imported with netext, started (connected only once the handshake is
// done), IPv4 and IPv6 ping and TCP through the tunnel, the peer's stats in
// netext status, the file's DNS settings in the client namespace's
// resolv.conf (a file of the test's: the host's is never touched), and
// after the stop the client namespace and its resolv.conf exactly as
// before.
func TestImportStartStop(t *testing.T) {
	nettest.RequireRoot(t)
	hostResolv := hostResolvConf(t)
	e := newEnv(t)
	serverKey, clientKey, psk := genKey(t), genKey(t), genKey(t)
	e.wgServer(serverKey, clientKey.PublicKey(), psk)
	endpoint := netip.AddrPortFrom(e.tp.ServerAddr4.Addr(), wgPort)

	e.tp.Client.WaitPing(t, e.tp.ServerAddr4.Addr(), 15*time.Second)
	e.tp.Client.WaitNoTentative(t)
	before := e.tp.Client.Snapshot(t)
	e.startDaemon()

	conf := filepath.Join(t.TempDir(), "office.conf")
	file := fmt.Sprintf(`[Interface]
PrivateKey = %s
Address = %s, %s
DNS = %s, corp.example
MTU = %d

[Peer]
PublicKey = %s
PresharedKey = %s
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = %s
`, clientKey, clientTunnel4, clientTunnel6, serverTunnel4.Addr(), tunnelMTU, serverKey.PublicKey(), psk, endpoint)
	if err := os.WriteFile(conf, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := []string{clientKey.String(), psk.String()}

	out := e.mustNetext("config", "import", conf)
	if !strings.Contains(out, "as configuration office") {
		t.Errorf("netext config import: %q", out)
	}
	var c apitype.Configuration
	if err := json.Unmarshal([]byte(e.mustNetext("config", "show", "office", "--json")), &c); err != nil {
		t.Fatal(err)
	}
	if c.ServerAddress != endpoint.String() || !c.HasSecret || !c.Enabled {
		t.Errorf("imported configuration %+v: want server %v, a secret, enabled", c, endpoint)
	}

	start := time.Now()
	e.mustNetext("start", "office")
	st := e.status("office")
	if st.Status != apitype.StatusConnected || st.ConnectedAt == nil || st.Interface == "" {
		t.Fatalf("after netext start: %+v, want connected", st.SessionStatus)
	}
	dev := st.Interface

	t.Run("handshake before connected", func(t *testing.T) {
		p := peerStats(t, st.ProviderStats)
		if p.PublicKey != serverKey.PublicKey().String() || p.Endpoint != endpoint.String() {
			t.Errorf("peer %+v: want %v at %v", p, serverKey.PublicKey(), endpoint)
		}
		if p.LastHandshake.IsZero() || p.LastHandshake.Before(start) || p.LastHandshake.After(*st.ConnectedAt) {
			t.Errorf("last handshake %v, connected at %v, start at %v: want the handshake between them", p.LastHandshake, *st.ConnectedAt, start)
		}
	})

	t.Run("default routes", func(t *testing.T) {
		// Everything takes the tunnel but the provider's own (protected,
		// marked) datagrams to the server.
		for _, dst := range []netip.Addr{e.tp.PublicHost4, e.tp.PublicHost6, endpoint.Addr()} {
			if got, err := e.tp.Client.RouteGet(dst, 0); err != nil || got.Dev != dev {
				t.Errorf("route to %v: %v %v, want dev %s", dst, got, err, dev)
			}
		}
		if got, err := e.tp.Client.RouteGet(endpoint.Addr(), netcfg.DefaultMark); err != nil || got.Dev != "eth0" {
			t.Errorf("route to %v with the bypass mark: %v %v, want dev eth0", endpoint.Addr(), got, err)
		}
	})

	t.Run("ping", func(t *testing.T) {
		for _, dst := range []netip.Addr{serverTunnel4.Addr(), serverTunnel6.Addr()} {
			e.tp.Client.WaitPing(t, dst, 10*time.Second)
		}
	})

	t.Run("tcp", func(t *testing.T) {
		for _, dst := range []netip.Addr{serverTunnel4.Addr(), serverTunnel6.Addr()} {
			tcpTransfer(t, e.tp.Client, e.tp.Server, dst, 16<<20)
		}
	})

	t.Run("status", func(t *testing.T) {
		out := e.mustNetext("status", "office")
		for _, want := range []string{"connected", serverKey.PublicKey().String(), endpoint.String(), " ago", "MiB"} {
			if !strings.Contains(out, want) {
				t.Errorf("netext status office: no %q in\n%s", want, out)
			}
		}
		p := peerStats(t, e.status("office").ProviderStats)
		if p.RxBytes < 32<<20 || p.TxBytes < 32<<20 {
			t.Errorf("peer %+v: want at least 32 MiB each way", p)
		}
	})

	t.Run("dns", func(t *testing.T) { e.checkDNS(t) })

	e.mustNetext("stop", "office")
	if st := e.status("office"); st.Status != apitype.StatusDisconnected || st.LastError != nil {
		t.Errorf("after netext stop: %+v, want disconnected without an error", st.SessionStatus)
	}
	e.waitNoProvider()
	if diff := cmp.Diff(before, e.tp.Client.Snapshot(t)); diff != "" {
		t.Errorf("client namespace changed (-before +after):\n%s", diff)
	}
	if err := e.daemon.Stop(time.Minute); err != nil {
		t.Errorf("netextd: %v", err)
	}
	if diff := cmp.Diff(before, e.tp.Client.Snapshot(t)); diff != "" {
		t.Errorf("client namespace changed after netextd stopped (-before +after):\n%s", diff)
	}
	if got, err := os.ReadFile(e.resolvConf); err != nil || string(got) != resolvConf {
		t.Errorf("the client namespace's resolv.conf after the stop: %q, %v; want it as before, %q", got, err, resolvConf)
	}
	if got := hostResolvConf(t); got != hostResolv {
		t.Errorf("the host's /etc/resolv.conf changed: %s, was %s", got, hostResolv)
	}
	for _, s := range secrets {
		if strings.Contains(e.daemon.Out.String(), s) {
			t.Error("a key appears in the log of netextd or the provider")
		}
		for _, out := range e.outputs {
			if strings.Contains(out, s) {
				t.Error("a key appears in the output of netext")
			}
		}
	}
}

// env is one test's world: the topology, the server, netextd's state
// directory and socket.
type env struct {
	t        *testing.T
	tp       *nettest.Topology
	stateDir string
	socket   string
	daemon   *testproc.Proc
	outputs  []string // of every netext command, searched for keys
	// resolvConf is the client namespace's /etc/resolv.conf as netextd
	// sees it, a file of the test's.
	resolvConf string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	bin(t, "netextd")
	tp := nettest.NewTopology(t)
	// Before any netextd runs in the namespace: its DNS must never reach
	// the host's resolv.conf.
	resolv := privateResolvConf(t, tp.Client)
	dir := testproc.DirIn(t, root) // enterable, for the socket
	return &env{t: t, tp: tp, stateDir: filepath.Join(dir, "state"), socket: filepath.Join(dir, "netextd.sock"), resolvConf: resolv}
}

func genKey(t *testing.T) wgtypes.Key {
	t.Helper()
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// wgServer runs wireguard-go in the server namespace until the test ends,
// configured through wgctrl with key, listening on wgPort, with client as
// its only peer, and gives its interface the server's tunnel addresses.
func (e *env) wgServer(key, client, psk wgtypes.Key) {
	t := e.t
	t.Helper()
	iface := fmt.Sprintf("wgt%d", os.Getpid()%100000)
	cmd := e.tp.Server.Command(context.Background(), bin(t, "wireguard"), "-f", iface)
	cmd.Env = append(os.Environ(), "WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error")
	p := testproc.Start(t, "wireguard-go", cmd)
	sock := filepath.Join("/var/run/wireguard", iface+".sock")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case <-p.Done():
			t.Fatalf("wireguard-go exited: %v\n%s", p.Err(), p.Out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("wireguard-go: no %s after 20s", sock)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wc, err := wgctrl.New()
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	port := wgPort
	err = wc.ConfigureDevice(iface, wgtypes.Config{
		PrivateKey:   &key,
		ListenPort:   &port,
		ReplacePeers: true,
		Peers: []wgtypes.PeerConfig{{
			PublicKey:    client,
			PresharedKey: &psk,
			AllowedIPs: []net.IPNet{
				ipNet(netip.PrefixFrom(clientTunnel4.Addr(), 32)),
				ipNet(netip.PrefixFrom(clientTunnel6.Addr(), 128)),
			},
		}},
	})
	if err != nil {
		t.Fatalf("configuring %s through wgctrl: %v", iface, err)
	}
	dev, err := wc.Device(iface)
	if err != nil || dev.PublicKey != key.PublicKey() || dev.ListenPort != wgPort || len(dev.Peers) != 1 {
		t.Fatalf("wireguard-go as wgctrl reads it: %+v, %v", dev, err)
	}
	e.tp.Server.Run(t, "ip", "link", "set", iface, "mtu", strconv.Itoa(tunnelMTU), "up")
	e.tp.Server.AddAddr(t, iface, serverTunnel4.String())
	e.tp.Server.AddAddr(t, iface, serverTunnel6.String())
}

func ipNet(p netip.Prefix) net.IPNet {
	return net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// startDaemon starts netextd in the client namespace and waits until it
// serves.
func (e *env) startDaemon(extra ...string) {
	t := e.t
	t.Helper()
	args := append([]string{"--state-dir", e.stateDir, "--socket", e.socket,
		"--providers-dir", filepath.Join(root, "providers.d"), "--log-level", "debug",
		// resolv.conf, which ip netns exec mounts from /etc/netns: never
		// a resolver of the host's that auto detection might find.
		"--dns-mode", "direct"}, extra...)
	e.daemon = testproc.Start(t, "netextd", e.tp.Client.Command(context.Background(), bin(t, "netextd"), args...))
	e.daemon.WaitOutput(t, "netextd ready", 20*time.Second)
}

// netext runs the netext command against the test's netextd and returns
// its standard output, and an error with its standard error when it fails.
func (e *env) netext(args ...string) (string, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin(e.t, "netext"), append([]string{"--socket", e.socket}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	e.outputs = append(e.outputs, stdout.String(), stderr.String())
	if err != nil {
		return stdout.String(), fmt.Errorf("netext %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

func (e *env) mustNetext(args ...string) string {
	e.t.Helper()
	out, err := e.netext(args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// status is the output of netext status NAME --json.
type status struct {
	apitype.SessionStatus
	ProviderStats json.RawMessage `json:"providerStats"`
}

func (e *env) status(name string) status {
	e.t.Helper()
	var st status
	out := e.mustNetext("status", name, "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("netext status %s --json: %v in %q", name, err, out)
	}
	return st
}

// peer is a peer in the WireGuard provider's stats.
type peer struct {
	PublicKey     string    `json:"publicKey"`
	Endpoint      string    `json:"endpoint"`
	LastHandshake time.Time `json:"lastHandshake"`
	RxBytes       uint64    `json:"rxBytes"`
	TxBytes       uint64    `json:"txBytes"`
}

// peerStats returns the only peer of the provider's stats.
func peerStats(t *testing.T, raw json.RawMessage) peer {
	t.Helper()
	var s struct {
		Peers []peer `json:"peers"`
	}
	if err := json.Unmarshal(raw, &s); err != nil || len(s.Peers) != 1 {
		t.Fatalf("provider stats %s (%v): want one peer", raw, err)
	}
	return s.Peers[0]
}

// waitNoProvider waits until no provider process is left.
func (e *env) waitNoProvider() {
	e.t.Helper()
	exe := bin(e.t, "netext-provider-wireguard")
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := pidsOf(exe)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("provider processes left: %v", pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pidsOf returns the processes that run exe.
func pidsOf(exe string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		if p, err := os.Readlink(filepath.Join("/proc", ent.Name(), "exe")); err == nil && p == exe {
			pids = append(pids, pid)
		}
	}
	return pids
}

// tcpTransfer sends size bytes from client to server over TCP to dst (an
// address of server), and as many back.
func tcpTransfer(t *testing.T, client, server *nettest.NS, dst netip.Addr, size int64) {
	t.Helper()
	var ln net.Listener
	if err := server.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(dst, 0).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		if _, err := io.CopyN(io.Discard, c, size); err != nil {
			served <- err
			return
		}
		_, err = io.CopyN(c, zeros{}, size)
		served <- err
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
	if _, err := io.CopyN(c, zeros{}, size); err != nil {
		t.Fatalf("TCP to %v: sending: %v", dst, err)
	}
	if _, err := io.CopyN(io.Discard, c, size); err != nil {
		t.Fatalf("TCP to %v: receiving: %v", dst, err)
	}
	if err := <-served; err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("TCP to %v: server: %v", dst, err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
