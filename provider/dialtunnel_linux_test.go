package provider_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/internal/providerproto"
	"github.com/netext/netext/provider"
	"github.com/netext/netext/tun"
	"github.com/netext/netext/tun/tuntest"
)

// dialChildEnv makes the test binary run the provider of TestDialTunnel.
const dialChildEnv = "PROVIDER_TEST_DIAL_CHILD"

// dialProvider dials through its tunnel when an app message asks it to:
// "udp4 ADDR" sends one datagram, "tcp4 ADDR" starts a connection.
type dialProvider struct {
	funcProvider
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (p *dialProvider) StartTunnel(ctx context.Context, t *provider.Tunnel, options map[string]any) error {
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p.funcProvider.StartTunnel(ctx, t, options)
}

func (p *dialProvider) StopTunnel(ctx context.Context, reason provider.StopReason) {
	p.cancel()
	p.wg.Wait()
}

func (p *dialProvider) HandleAppMessage(ctx context.Context, data []byte) ([]byte, error) {
	network, addr, _ := strings.Cut(string(data), " ")
	switch network {
	case "uid":
		return []byte(fmt.Sprint(os.Getuid(), os.Geteuid())), nil
	case "tcp4":
		p.wg.Go(func() { _, _ = p.tun().DialTunnel(p.ctx, network, addr) })
		return []byte("dialing"), nil
	}
	c, err := p.tun().DialTunnel(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Write([]byte("through the tunnel")); err != nil {
		return nil, err
	}
	return []byte(c.LocalAddr().String()), nil
}

// TestDialTunnelChild is the provider process of TestDialTunnel.
func TestDialTunnelChild(t *testing.T) {
	mode := os.Getenv(dialChildEnv)
	if mode == "" {
		t.Skip("only runs as a child of TestDialTunnel")
	}
	if mode == "fallback" {
		provider.ForceBindFallback()
	}
	provider.Main(&dialProvider{funcProvider: funcProvider{start: func(ctx context.Context, t *provider.Tunnel, _ map[string]any) error {
		return t.SetNetworkSettings(ctx, testSettings())
	}}})
}

// TestDialTunnel runs an unprivileged provider process in a namespace whose
// routes send everything out of a veth, and checks that what it dials with
// DialTunnel leaves through the tunnel device instead.
func TestDialTunnel(t *testing.T) {
	nettest.RequireRoot(t)
	for _, mode := range []string{"bindtodevice", "fallback"} {
		t.Run(mode, func(t *testing.T) { testDialTunnel(t, mode) })
	}
}

func testDialTunnel(t *testing.T, mode string) {
	ctx := testContext(t)
	ns, peer := nettest.NewNS(t), nettest.NewNS(t)
	nettest.Veth(t, ns, "eth0", peer, "eth0")
	ns.AddAddr(t, "eth0", "192.0.2.2/24")
	ns.Run(t, "ip", "route", "add", "default", "via", "192.0.2.1")

	var dev tun.Device
	if err := ns.Do(func() (err error) {
		dev, err = tun.Create(tun.Options{Name: "ntun0"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	ns.Run(t, "ip", "link", "set", "ntun0", "up")
	ns.AddAddr(t, "ntun0", "10.8.0.2/32")
	if mode == "fallback" {
		// Without SO_BINDTODEVICE, only the routes take packets into the
		// tunnel, as the daemon's rules do for its traffic.
		ns.Run(t, "ip", "rule", "add", "pref", "100", "from", "10.8.0.2", "lookup", "100")
		ns.Run(t, "ip", "route", "add", "198.51.100.0/24", "dev", "ntun0", "table", "100")
	}

	// The provider runs as nobody, from a copy of the test binary that
	// nobody may execute.
	dir := t.TempDir()
	for d := dir; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "provider.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}

	var setSettings sync.Once
	daemonEnd, providerEnd, err := providerproto.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := providerproto.New(daemonEnd, providerproto.Config{Role: providerproto.RoleDaemon, Handler: func(in *providerproto.Incoming) {
		defer in.CloseFiles()
		switch in.Type {
		case providerproto.TypeSetSettings:
			sent := false
			setSettings.Do(func() {
				sent = true
				ifi, err := interfaceIndex(ns, "ntun0")
				if err != nil {
					_ = in.ReplyError(err)
					return
				}
				off := dev.Offloads()
				_ = in.Reply(&providerproto.SetSettingsReply{Tunnel: &providerproto.Tunnel{
					Name: "ntun0", Index: ifi, Kind: providerproto.KindTUN, MTU: 1500,
					Offloads: providerproto.Offloads{VnetHdr: off != 0, TCP: off&tun.OffloadTCP != 0, UDP: off&tun.OffloadUDP != 0},
				}}, dev.File())
			})
			if !sent {
				_ = in.Reply(nil)
			}
		case providerproto.TypeProtect:
			_ = in.Reply(nil)
		default:
			if !in.IsNotification() {
				_ = in.ReplyError(providerproto.NewError(providerproto.CodeUnsupported, in.Type))
			}
		}
	}})
	if err != nil {
		providerEnd.Close()
		t.Fatal(err)
	}
	defer func() { conn.Close(); <-conn.Done() }()

	cmd := ns.Command(ctx, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
		bin, "-test.run=^TestDialTunnelChild$", "-test.count=1")
	cmd.Env = append(removeEnv(os.Environ(), "NETEXT_PROVIDER_FD"), dialChildEnv+"="+mode)
	cmd.ExtraFiles = []*os.File{providerEnd}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	providerEnd.Close()
	defer func() {
		conn.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("provider process: %v\n%s", err, stderr.String())
		}
	}()
	if _, err := conn.WaitHello(ctx); err != nil {
		t.Fatalf("hello: %v\n%s", err, stderr.String())
	}
	if _, err := conn.Request(ctx, providerproto.TypeStart, &providerproto.Start{}); err != nil {
		t.Fatalf("start: %v\n%s", err, stderr.String())
	}

	// The packets the kernel routes into the tunnel.
	packets := make(chan tuntest.Packet, 64)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		bufs := make([][]byte, dev.BatchSize())
		for i := range bufs {
			bufs[i] = make([]byte, 65535+16)
		}
		sizes := make([]int, len(bufs))
		for {
			n, err := dev.Read(bufs, sizes, 16)
			if err != nil && n == 0 {
				return
			}
			for i := range n {
				pkt := bytes.Clone(bufs[i][16 : 16+sizes[i]]) // Parse's result aliases it
				if p, err := tuntest.Parse(pkt); err == nil {
					select {
					case packets <- p:
					default:
					}
				}
			}
		}
	}()
	defer func() { dev.Close(); <-readDone }()
	waitFor := func(what string, match func(tuntest.Packet) bool) tuntest.Packet {
		t.Helper()
		for {
			select {
			case p := <-packets:
				if match(p) {
					return p
				}
			case <-ctx.Done():
				t.Fatalf("no %s on the tunnel device", what)
			}
		}
	}
	send := func(msg string) string {
		t.Helper()
		r, err := conn.Request(ctx, providerproto.TypeAppMessage, &providerproto.AppMessage{Data: []byte(msg)})
		if err != nil {
			t.Fatalf("%s: %v\n%s", msg, err, stderr.String())
		}
		var body providerproto.AppMessage
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		return string(body.Data)
	}

	if got := send("uid"); got != "65534 65534" {
		t.Errorf("the provider runs as uid %q, want 65534", got)
	}
	if mode == "bindtodevice" {
		// The routes alone would take the packets out of eth0.
		r, err := ns.RouteGet(netip.MustParseAddr("198.51.100.1"), 0)
		if err != nil || r.Dev != "eth0" {
			t.Fatalf("route to 198.51.100.1: %+v, %v; want dev eth0", r, err)
		}
	}

	dst := netip.MustParseAddrPort("198.51.100.1:4789")
	local := send("udp4 " + dst.String())
	udp := waitFor("UDP datagram", func(p tuntest.Packet) bool { return p.Proto == tuntest.ProtoUDP && p.Dst == dst })
	if string(udp.Payload) != "through the tunnel" || udp.Src.String() != local || udp.Src.Addr() != netip.MustParseAddr("10.8.0.2") {
		t.Errorf("UDP on the tunnel: %v -> %v %q; the provider's socket is %s", udp.Src, udp.Dst, udp.Payload, local)
	}

	dstTCP := netip.MustParseAddrPort("198.51.100.1:443")
	if got := send("tcp4 " + dstTCP.String()); got != "dialing" {
		t.Fatalf("tcp4: %q", got)
	}
	syn := waitFor("TCP SYN", func(p tuntest.Packet) bool { return p.Proto == tuntest.ProtoTCP && p.Dst == dstTCP })
	if syn.Src.Addr() != netip.MustParseAddr("10.8.0.2") {
		t.Errorf("SYN from %v, want the tunnel's address", syn.Src)
	}

	if _, err := conn.Request(ctx, providerproto.TypeStop, &providerproto.Stop{Reason: providerproto.StopUserInitiated}); err != nil {
		t.Errorf("stop: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "tunnel device ready") {
		t.Errorf("provider log:\n%s", stderr.String())
	}
}

func interfaceIndex(ns *nettest.NS, name string) (int, error) {
	var index int
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return fmt.Errorf("looking up %s: %w", name, err)
		}
		index = ifi.Index
		return nil
	})
	return index, err
}
