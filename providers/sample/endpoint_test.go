package sample

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/netext/netext/tun/tuntest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wait bounds every wait in these tests.
const wait = 10 * time.Second

func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func listenUDP(t testing.TB) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// runEndpoint runs e on a new in-memory device until the test ends.
func runEndpoint(t testing.TB, e *Endpoint) *tuntest.Channel {
	t.Helper()
	dev := tuntest.NewChannel(tuntest.Options{})
	done := make(chan error, 1)
	go func() { done <- e.Run(dev) }()
	t.Cleanup(func() {
		e.Close()
		dev.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(wait):
			t.Errorf("Run did not return within %v of Close", wait)
		}
	})
	return dev
}

type testPair struct {
	client, server       *Endpoint
	clientDev, serverDev *tuntest.Channel
}

func newPair(t testing.TB, cfg Config) *testPair {
	t.Helper()
	if cfg.Key == (Key{}) {
		cfg.Key = testKey(1)
	}
	cfg.Logger = testLogger(t)
	p := &testPair{}
	var err error
	p.server, err = NewServer(listenUDP(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.serverDev = runEndpoint(t, p.server)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	p.client, err = Connect(ctx, listenUDP(t), p.server.LocalAddr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.clientDev = runEndpoint(t, p.client)
	return p
}

func receivePacket(t testing.TB, dev *tuntest.Channel) []byte {
	t.Helper()
	select {
	case pkt := <-dev.Outbound:
		return pkt
	case <-time.After(wait):
		t.Fatalf("no packet on %s within %v", must(dev.Name()), wait)
		return nil
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// An ICMP echo injected on one side arrives intact on the other, and its
// reply comes back, over IPv4 and IPv6.
func TestEcho(t *testing.T) {
	p := newPair(t, Config{})
	for _, fam := range []struct{ client, server netip.Addr }{
		{netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("10.99.0.1")},
		{netip.MustParseAddr("fd99::2"), netip.MustParseAddr("fd99::1")},
	} {
		req := must(tuntest.ICMPEcho(fam.client, fam.server, 7, 1, []byte("ping through the sample tunnel")))
		p.clientDev.Inbound <- bytes.Clone(req)
		if got := receivePacket(t, p.serverDev); !bytes.Equal(got, req) {
			t.Fatalf("server got %x, want %x", got, req)
		}
		reply := must(tuntest.EchoReply(req))
		p.serverDev.Inbound <- bytes.Clone(reply)
		if got := receivePacket(t, p.clientDev); !bytes.Equal(got, reply) {
			t.Fatalf("client got %x, want %x", got, reply)
		}
	}
	cs, ss := p.client.Stats(), p.server.Stats()
	if cs.TxPackets != 2 || cs.RxPackets != 2 || ss.TxPackets != 2 || ss.RxPackets != 2 || cs.Handshakes != 1 || ss.Handshakes != 1 {
		t.Errorf("stats: client %+v, server %+v", cs, ss)
	}
}

// Many packets of many sizes, both ways at once, arrive complete and in
// order. Packets go in rounds small enough for the socket buffers, so
// nothing is lost on loopback.
func TestBulk(t *testing.T) {
	p := newPair(t, Config{})
	c, s := netip.MustParseAddrPort("10.99.0.2:4000"), netip.MustParseAddrPort("10.99.0.1:5000")
	const rounds, perRound = 20, 200
	errc := make(chan error, 2)
	send := func(dev *tuntest.Channel, src, dst netip.AddrPort, peer *tuntest.Channel) {
		for r := range rounds {
			var want [][]byte
			for i := range perRound {
				size := (r*perRound + i*37) % (DefaultMTU - 28)
				pkt := must(tuntest.UDP(src, dst, bytes.Repeat([]byte{byte(i)}, size)))
				want = append(want, pkt)
				dev.Inbound <- bytes.Clone(pkt)
			}
			for i, w := range want {
				select {
				case got := <-peer.Outbound:
					if !bytes.Equal(got, w) {
						errc <- fmt.Errorf("%v->%v: round %d packet %d differs", src, dst, r, i)
						return
					}
				case <-time.After(wait):
					errc <- fmt.Errorf("%v->%v: round %d packet %d missing", src, dst, r, i)
					return
				}
			}
		}
		errc <- nil
	}
	go send(p.clientDev, c, s, p.serverDev)
	go send(p.serverDev, s, c, p.clientDev)
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("client %+v", p.client.Stats())
}

// The server follows its client to a new address on an authenticated
// packet, and only then.
func TestServerFollowsClient(t *testing.T) {
	p := newPair(t, Config{})
	first := p.server.Peer()
	if first != p.client.LocalAddr() {
		t.Fatalf("server's peer %v, want the client's address %v", first, p.client.LocalAddr())
	}
	pkt := must(tuntest.ICMPEcho(netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("10.99.0.1"), 1, 1, nil))
	cs := p.client.session.Load()
	moved := listenUDP(t)
	defer moved.Close()
	to := net.UDPAddrFromAddrPort(p.server.LocalAddr())

	// A forgery (the wrong key) and a replay from the new address are
	// dropped and do not move the server.
	wrong, _ := testSessions(t, testKey(99))
	must(moved.WriteToUDP(sealed(wrong, 1<<20, pkt), to))
	replayed := sealed(cs, cs.sendCounter.Add(1)-1, pkt)
	p.clientConnSend(t, replayed)
	receivePacket(t, p.serverDev)
	must(moved.WriteToUDP(replayed, to))
	// A genuine packet from the client's old address proves the server has
	// handled the two above.
	p.clientDev.Inbound <- bytes.Clone(pkt)
	receivePacket(t, p.serverDev)
	if got := p.server.Peer(); got != first {
		t.Fatalf("server moved to %v after a forged or replayed packet", got)
	}
	if s := p.server.Stats(); s.DroppedAuth != 1 || s.DroppedReplay != 1 || s.Roams != 0 {
		t.Errorf("server stats %+v, want 1 dropped for authentication, 1 replay, 0 roams", s)
	}

	// A fresh packet from the new address moves the server; the reply goes
	// there.
	must(moved.WriteToUDP(sealed(cs, cs.sendCounter.Add(1)-1, pkt), to))
	receivePacket(t, p.serverDev)
	want := must(netip.ParseAddrPort(moved.LocalAddr().String()))
	if got := p.server.Peer(); got != want {
		t.Fatalf("server's peer %v, want %v", got, want)
	}
	p.serverDev.Inbound <- must(tuntest.EchoReply(pkt))
	buf := make([]byte, 2048)
	moved.SetReadDeadline(time.Now().Add(wait))
	n, err := moved.Read(buf)
	if err != nil {
		t.Fatalf("reply at the new address: %v", err)
	}
	var op opener
	cs.replay.Reset()
	if got, err := op.open(p.client.session.Load(), nil, buf[:n]); err != nil || !bytes.Equal(got, must(tuntest.EchoReply(pkt))) {
		t.Errorf("reply at the new address: %x, %v", got, err)
	}
}

// An authenticated datagram larger than any packet the endpoint receives
// (which the socket lets through when it coalesces with GRO) is dropped as
// malformed; the tunnel goes on.
func TestOversizeDatagramDropped(t *testing.T) {
	p := newPair(t, Config{})
	if !p.server.Stats().GRO {
		t.Skip("no UDP GRO: the socket itself drops oversize datagrams")
	}
	cs := p.client.session.Load()
	p.clientConnSend(t, sealed(cs, cs.sendCounter.Add(1)-1, make([]byte, 2*maxPacket)))
	pkt := must(tuntest.ICMPEcho(netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("10.99.0.1"), 1, 1, nil))
	p.clientDev.Inbound <- bytes.Clone(pkt)
	if got := receivePacket(t, p.serverDev); !bytes.Equal(got, pkt) {
		t.Fatalf("server got %x, want %x", got, pkt)
	}
	if s := p.server.Stats(); s.DroppedMalformed != 1 || s.RxPackets != 1 {
		t.Errorf("server stats %+v, want 1 dropped as malformed and 1 packet received", s)
	}
}

// clientConnSend sends a datagram from the client's own socket.
func (p *testPair) clientConnSend(t testing.TB, msg []byte) {
	t.Helper()
	must(p.client.conn.UDPConn().WriteToUDPAddrPort(msg, p.server.LocalAddr()))
}

// A repeated hello of the current session gets the same ack; an old hello
// replayed later is dropped; a newer hello takes over.
func TestServerHellos(t *testing.T) {
	k := testKey(4)
	server, err := NewServer(listenUDP(t), Config{Key: k, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	runEndpoint(t, server)
	hs := newHandshakeAEADs(&k)
	c := listenUDP(t)
	defer c.Close()
	exchange := func(h hello) []byte {
		t.Helper()
		must(c.WriteToUDPAddrPort(hs.sealHello(h), server.LocalAddr()))
		c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 256)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no ack: %v", err)
		}
		a, ok := hs.openAck(buf[:n])
		if !ok || a.clientRandom != h.clientRandom {
			t.Fatalf("bad ack %x", buf[:n])
		}
		return buf[:n]
	}
	h1 := hello{timestamp: 100}
	h1.clientRandom[0] = 1
	ack1 := exchange(h1)
	if again := exchange(h1); !bytes.Equal(again, ack1) {
		t.Error("a repeated hello got a different ack")
	}
	h2 := hello{timestamp: 200}
	h2.clientRandom[0] = 2
	exchange(h2)
	// h1 again: stale now.
	must(c.WriteToUDPAddrPort(hs.sealHello(h1), server.LocalAddr()))
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 256)); err == nil {
		t.Errorf("stale hello answered with %d bytes", n)
	}
	if s := server.Stats(); s.Handshakes != 2 || s.DroppedHandshake != 1 {
		t.Errorf("server stats %+v, want 2 handshakes and 1 dropped hello", s)
	}
}

// A second client takes over the server; the first one's packets no longer
// authenticate.
func TestNewClientTakesOver(t *testing.T) {
	p := newPair(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	second, err := Connect(ctx, listenUDP(t), p.server.LocalAddr(), Config{Key: testKey(1), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	secondDev := runEndpoint(t, second)
	pkt := must(tuntest.ICMPEcho(netip.MustParseAddr("10.99.0.3"), netip.MustParseAddr("10.99.0.1"), 1, 1, nil))
	secondDev.Inbound <- bytes.Clone(pkt)
	receivePacket(t, p.serverDev)
	old := must(tuntest.ICMPEcho(netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("10.99.0.1"), 1, 2, nil))
	p.clientDev.Inbound <- old
	secondDev.Inbound <- bytes.Clone(pkt)
	if got := receivePacket(t, p.serverDev); !bytes.Equal(got, pkt) {
		t.Errorf("server got %x, want only the second client's packet", got)
	}
	if p.server.Peer() != second.LocalAddr() {
		t.Errorf("server's peer %v, want %v", p.server.Peer(), second.LocalAddr())
	}
}

func TestConnectFails(t *testing.T) {
	silent := listenUDP(t) // a socket nobody answers on
	defer silent.Close()
	wrongKey, err := NewServer(listenUDP(t), Config{Key: testKey(2)})
	if err != nil {
		t.Fatal(err)
	}
	runEndpoint(t, wrongKey)

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		addr    netip.AddrPort
		want    string
		wantErr error
	}{
		{"nobody there", context.Background(), must(netip.ParseAddrPort(silent.LocalAddr().String())), "no answer from", nil},
		{"wrong key", context.Background(), wrongKey.LocalAddr(), "same key", nil},
		{"canceled", canceled, wrongKey.LocalAddr(), "", context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Connect(tt.ctx, listenUDP(t), tt.addr, Config{Key: testKey(1), HandshakeTimeout: 1500 * time.Millisecond, Logger: testLogger(t)})
			if err == nil {
				t.Fatal("Connect succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("Connect: %v; want an error containing %q (and matching %v)", err, tt.want, tt.wantErr)
			}
		})
	}
	if s := wrongKey.Stats(); s.DroppedHandshake == 0 || s.Handshakes != 0 {
		t.Errorf("server with the other key: %+v, want dropped hellos and no handshake", s)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Config.Key"},
		{Config{Key: testKey(1), MTU: 100}, "Config.MTU"},
		{Config{Key: testKey(1), MTU: 70000}, "Config.MTU"},
		{Config{Key: testKey(1), Keepalive: -1}, "Config.Keepalive"},
	} {
		pc := listenUDP(t)
		_, err := NewServer(pc, tt.cfg)
		pc.Close()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewServer(%+v): %v, want an error naming %s", tt.cfg, err, tt.want)
		}
	}
}

// Keepalives flow while the tunnel is quiet and are not written to the
// device.
func TestKeepalive(t *testing.T) {
	p := newPair(t, Config{Keepalive: 20 * time.Millisecond})
	deadline := time.Now().Add(wait)
	for p.server.Stats().KeepalivesReceived < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no keepalives within %v: %+v", wait, p.server.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case pkt := <-p.serverDev.Outbound:
		t.Errorf("keepalive written to the device: %x", pkt)
	default:
	}
}

// Closing the device ends Run without an error.
func TestDeviceClosed(t *testing.T) {
	server, err := NewServer(listenUDP(t), Config{Key: testKey(1)})
	if err != nil {
		t.Fatal(err)
	}
	dev := tuntest.NewChannel(tuntest.Options{})
	done := make(chan error, 1)
	go func() { done <- server.Run(dev) }()
	dev.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after the device closed: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Run still running after the device closed")
	}
	select {
	case <-server.Done():
	default:
		t.Error("endpoint not closed after Run returned")
	}
}

func TestSealOpenNoAllocations(t *testing.T) {
	client, server := testSessions(t, testKey(1))
	buf := make([]byte, HeaderLen+1400+TagLen)
	dst := make([]byte, 0, 1500)
	var sl sealer
	var op opener
	counter := uint64(0)
	allocs := testing.AllocsPerRun(100, func() {
		msg := sl.seal(client, counter, buf, 1400)
		counter++
		if _, err := op.open(server, dst, msg); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("seal+open: %v allocations, want 0", allocs)
	}
}
