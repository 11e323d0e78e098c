package tun_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/internal/testproc"
	"github.com/netext/netext/tun"
	"github.com/netext/netext/tun/tuntest"
	"github.com/vishvananda/netlink"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	wgtun "golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// childEnv makes the test binary act as the unprivileged child of
// TestHandOverToUnprivilegedProcess instead of running tests.
const childEnv = "NETEXT_TUN_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait in these tests.
const waitTimeout = 10 * time.Second

// readOffset is the headroom tests reserve in front of every packet, as
// wireguard-go does.
const readOffset = 16

// createIn creates a device inside ns and closes it in t.Cleanup.
func createIn(t testing.TB, ns *nettest.NS, opts tun.Options) tun.Device {
	t.Helper()
	var dev tun.Device
	err := ns.Do(func() error {
		var err error
		dev, err = tun.Create(opts)
		return err
	})
	if err != nil {
		t.Fatalf("tun.Create(%+v): %v", opts, err)
	}
	t.Cleanup(func() { dev.Close() })
	return dev
}

func devName(t testing.TB, dev tun.Device) string {
	t.Helper()
	name, err := dev.Name()
	if err != nil {
		t.Fatalf("Name: %v", err)
	}
	return name
}

// configure adds addresses to the device's interface and sets it up.
func configure(t testing.TB, ns *nettest.NS, dev tun.Device, cidrs ...string) {
	t.Helper()
	name := devName(t, dev)
	for _, c := range cidrs {
		ns.AddAddr(t, name, c)
	}
	nl := ns.Netlink(t)
	link, err := nl.LinkByName(name)
	if err != nil {
		t.Fatalf("finding %s: %v", name, err)
	}
	if err := nl.LinkSetUp(link); err != nil {
		t.Fatalf("setting %s up: %v", name, err)
	}
	// When the link comes up, the kernel re-adds the local routes of
	// addresses added before from a work queue, so for a moment packets to
	// them would be forwarded (and dropped) rather than delivered.
	for _, c := range cidrs {
		addr := netip.MustParsePrefix(c).Addr()
		deadline := time.Now().Add(waitTimeout)
		for {
			r, err := ns.RouteGet(addr, 0)
			if err == nil && r.Type == "local" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never became local: %+v, %v", addr, r, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// makeBufs returns n buffers with room for offset plus a 64 KiB packet.
func makeBufs(n int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, readOffset+65535)
	}
	return bufs, make([]int, n)
}

// startReader reads dev until the test ends and sends each batch, as
// copies of the packets, on the returned channel.
func startReader(t testing.TB, dev tun.Device) <-chan [][]byte {
	ch := make(chan [][]byte, 256)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		bufs, sizes := makeBufs(dev.BatchSize())
		for {
			n, err := dev.Read(bufs, sizes, readOffset)
			if errors.Is(err, wgtun.ErrTooManySegments) {
				continue
			}
			if err != nil {
				return
			}
			batch := make([][]byte, n)
			for i := range n {
				batch[i] = bytes.Clone(bufs[i][readOffset : readOffset+sizes[i]])
			}
			select {
			case ch <- batch:
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		dev.Close()
		<-done
	})
	return ch
}

// received is a packet read from a device, with the size of its batch.
type received struct {
	tuntest.Packet
	batch int
}

// collect reads batches from ch until it has count packets that match, and
// fails the test on packets that do not parse.
func collect(t testing.TB, ch <-chan [][]byte, count int, match func(tuntest.Packet) bool) []received {
	t.Helper()
	var got []received
	deadline := time.After(waitTimeout)
	for len(got) < count {
		select {
		case batch := <-ch:
			for _, pkt := range batch {
				p, err := tuntest.Parse(pkt)
				if err != nil {
					t.Errorf("read a bad packet (%v): %x", err, pkt)
					continue
				}
				if match(p) {
					got = append(got, received{p, len(batch)})
				}
			}
		case <-deadline:
			t.Fatalf("got %d of %d expected packets", len(got), count)
		}
	}
	return got
}

// mustPkt returns a func that fails the test on a packet helper's error.
func mustPkt(t testing.TB) func([]byte, error) []byte {
	return func(pkt []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return pkt
	}
}

// withOffset returns pkt behind readOffset bytes of headroom.
func withOffset(pkt []byte) []byte {
	return append(make([]byte, readOffset), pkt...)
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		opts tun.Options
		want string // substring of the error
	}{
		{"bad kind", tun.Options{Kind: 7}, "Options.Kind"},
		{"long name", tun.Options{Name: "abcdefghijklmnop"}, "Options.Name"},
		{"slash", tun.Options{Name: "a/b"}, "Options.Name"},
		{"space", tun.Options{Name: "a b"}, "Options.Name"},
		{"dot", tun.Options{Name: "."}, "Options.Name"},
		{"two verbs", tun.Options{Name: "a%d%d"}, "Options.Name"},
		{"other verb", tun.Options{Name: "a%s"}, "Options.Name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tun.Create(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("tun.Create(%+v) = %v, want an error mentioning %s", tt.opts, err, tt.want)
			}
		})
	}
}

func TestFromFDRejectsOtherDescriptors(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tun.FromFile(f); err == nil {
		t.Error("tun.FromFile(/dev/null): err = nil")
	}
	if _, err := tun.FromFD(-1); err == nil {
		t.Error("tun.FromFD(-1): err = nil")
	}
	// An unattached clone device is not a device either.
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("opening %s: %v", "/dev/net/tun", err)
	}
	if _, err := tun.FromFD(fd); err == nil || !strings.Contains(err.Error(), "not attached") {
		t.Errorf("tun.FromFD(unattached) = %v, want a \"not attached\" error", err)
	}
}

func TestCreate(t *testing.T) {
	tests := []struct {
		name         string
		opts         tun.Options
		wantName     string // "" when the kernel picks
		wantKind     tun.Kind
		wantOffloads tun.Offloads
		wantBatch    int
	}{
		{"tun", tun.Options{}, "", tun.KindTUN, tun.OffloadTCP | tun.OffloadUDP, conn.IdealBatchSize},
		{"tun named", tun.Options{Name: "nxtun0"}, "nxtun0", tun.KindTUN, tun.OffloadTCP | tun.OffloadUDP, conn.IdealBatchSize},
		{"tun template", tun.Options{Name: "nx%d"}, "nx0", tun.KindTUN, tun.OffloadTCP | tun.OffloadUDP, conn.IdealBatchSize},
		{"tun no offloads", tun.Options{DisableOffloads: true}, "", tun.KindTUN, 0, 1},
		{"tap", tun.Options{Kind: tun.KindTAP, Name: "nxtap0"}, "nxtap0", tun.KindTAP, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := nettest.NewNS(t)
			dev := createIn(t, ns, tt.opts)
			name := devName(t, dev)
			if tt.wantName != "" && name != tt.wantName {
				t.Errorf("Name = %q, want %q", name, tt.wantName)
			}
			if dev.Kind() != tt.wantKind {
				t.Errorf("tun.Kind = %v, want %v", dev.Kind(), tt.wantKind)
			}
			offloads := dev.Offloads()
			if tt.wantOffloads&tun.OffloadUDP != 0 && offloads == tun.OffloadTCP {
				t.Logf("kernel refused UDP offloads (before Linux 6.2?)")
				offloads |= tun.OffloadUDP
			}
			if offloads != tt.wantOffloads {
				t.Errorf("tun.Offloads = %v, want %v", dev.Offloads(), tt.wantOffloads)
			}
			if dev.BatchSize() != tt.wantBatch {
				t.Errorf("BatchSize = %d, want %d", dev.BatchSize(), tt.wantBatch)
			}
			// MTU is asked from outside the namespace: the device still
			// finds its interface.
			if mtu, err := dev.MTU(); err != nil || mtu != 1500 {
				t.Errorf("MTU = %d, %v; want 1500 (the kernel's default, untouched)", mtu, err)
			}
			if dev.File() == nil {
				t.Error("File = nil")
			}

			nl := ns.Netlink(t)
			link, err := nl.LinkByName(name)
			if err != nil {
				t.Fatalf("interface %s not in the namespace: %v", name, err)
			}
			tap, ok := link.(*netlink.Tuntap)
			if !ok {
				t.Fatalf("link type %T, want *netlink.Tuntap", link)
			}
			wantMode := netlink.TUNTAP_MODE_TUN
			if dev.Kind() == tun.KindTAP {
				wantMode = netlink.TUNTAP_MODE_TAP
			}
			gotVnet := tap.Flags&netlink.TUNTAP_VNET_HDR != 0
			if tap.Mode != wantMode || !tap.NonPersist || tap.Flags&netlink.TUNTAP_NO_PI == 0 || gotVnet != (dev.Offloads() != 0) {
				t.Errorf("link mode %v, non-persistent %v, flags %v; want mode %v, non-persistent, no_pi, vnet_hdr %v",
					tap.Mode, tap.NonPersist, tap.Flags, wantMode, dev.Offloads() != 0)
			}
			if link.Attrs().Flags&net.FlagUp != 0 || len(mustAddrs(t, nl, link)) != 0 {
				t.Errorf("interface is up or has addresses; tun.Create must leave it alone")
			}

			if err := nl.LinkSetMTU(link, 1380); err != nil {
				t.Fatal(err)
			}
			if mtu, err := dev.MTU(); err != nil || mtu != 1380 {
				t.Errorf("MTU after change = %d, %v; want 1380", mtu, err)
			}

			// Creating the same name again fails instead of attaching.
			if err := ns.Do(func() error {
				d, err := tun.Create(tun.Options{Name: name, Kind: dev.Kind()})
				if err == nil {
					d.Close()
				}
				return err
			}); err == nil || !strings.Contains(err.Error(), "exists") {
				t.Errorf("second tun.Create(%q) = %v, want an \"exists\" error", name, err)
			}

			// Closing the only descriptor removes the interface.
			if err := dev.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := dev.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			waitGone(t, ns, name)
		})
	}
}

func mustAddrs(t testing.TB, nl *netlink.Handle, link netlink.Link) []netlink.Addr {
	t.Helper()
	addrs, err := nl.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

// waitGone waits until the interface name no longer exists in ns.
func waitGone(t testing.TB, ns *nettest.NS, name string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		_, err := ns.Netlink(t).LinkByName(name)
		if err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("interface %s still exists", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	ns := nettest.NewNS(t)
	for _, disable := range []bool{false, true} {
		dev := createIn(t, ns, tun.Options{DisableOffloads: disable})
		errc := make(chan error, 1)
		go func() {
			bufs, sizes := makeBufs(dev.BatchSize())
			_, err := dev.Read(bufs, sizes, readOffset)
			errc <- err
		}()
		time.Sleep(20 * time.Millisecond) // let Read block; the test passes either way
		if err := dev.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case err := <-errc:
			if !errors.Is(err, os.ErrClosed) {
				t.Errorf("Read after Close: %v, want os.ErrClosed", err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("Read still blocked after Close")
		}
		if _, err := dev.Write([][]byte{withOffset([]byte{0x45})}, readOffset); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Write after Close: %v, want os.ErrClosed", err)
		}
		if _, ok := <-dev.Events(); ok {
			t.Error("Events delivered an event, want a closed channel")
		}
	}
}

func TestBadReadWriteArguments(t *testing.T) {
	ns := nettest.NewNS(t)
	dev := createIn(t, ns, tun.Options{})
	bufs, sizes := makeBufs(2)
	if _, err := dev.Read(nil, nil, 0); err == nil {
		t.Error("Read with no buffers: err = nil")
	}
	if _, err := dev.Read(bufs, sizes[:1], 0); err == nil {
		t.Error("Read with short sizes: err = nil")
	}
	if _, err := dev.Read(bufs, sizes, len(bufs[0])); err == nil {
		t.Error("Read with offset past the buffer: err = nil")
	}
	if _, err := dev.Write([][]byte{make([]byte, 60)}, 4); err == nil {
		t.Error("Write with offset below the virtio-net header: err = nil")
	}
	if _, err := dev.Write([][]byte{make([]byte, 10)}, 10); err == nil {
		t.Error("Write of an empty packet: err = nil")
	}
}

func TestUDPAndICMP(t *testing.T) {
	for _, disable := range []bool{false, true} {
		t.Run(fmt.Sprintf("offloads=%v", !disable), func(t *testing.T) {
			ns := nettest.NewNS(t)
			dev := createIn(t, ns, tun.Options{DisableOffloads: disable})
			configure(t, ns, dev, "10.6.0.1/24", "fd06::1/64")
			packets := startReader(t, dev)
			t.Logf("%s: offloads %v, batch %d", devName(t, dev), dev.Offloads(), dev.BatchSize())

			for _, local := range []string{"10.6.0.1", "fd06::1"} {
				local := netip.MustParseAddr(local)
				peer := local.Next()

				// Socket to device.
				conn := listenUDP(t, ns, netip.AddrPortFrom(local, 0))
				dst := netip.AddrPortFrom(peer, 9999)
				if _, err := conn.WriteToUDPAddrPort([]byte("to the device"), dst); err != nil {
					t.Fatalf("sending to %v: %v", dst, err)
				}
				got := collect(t, packets, 1, func(p tuntest.Packet) bool { return p.Dst == dst })
				if string(got[0].Payload) != "to the device" || got[0].Src != conn.LocalAddr().(*net.UDPAddr).AddrPort() {
					t.Errorf("read %+v", got[0].Packet)
				}

				// Segmentation: one send of 8 segments. With UDP
				// offload the kernel hands the device one super-packet
				// and Read splits it into one batch.
				const segments, segSize = 8, 1000
				gsoDst := netip.AddrPortFrom(peer, 9998)
				sendGSO(t, conn, gsoDst, segments, segSize)
				got = collect(t, packets, segments, func(p tuntest.Packet) bool { return p.Dst == gsoDst })
				var payload []byte
				for i, r := range got {
					payload = append(payload, r.Payload...)
					switch {
					case dev.Offloads()&tun.OffloadUDP != 0 && r.batch != segments:
						t.Errorf("segment %d came in a batch of %d, want all %d in one", i, r.batch, segments)
					case dev.Offloads() == 0 && r.batch != 1:
						t.Errorf("segment %d came in a batch of %d without offloads", i, r.batch)
					}
				}
				if !bytes.Equal(payload, gsoPayload(segments*segSize)) {
					t.Errorf("segmented payload arrived corrupted")
				}

				// tun.Device to socket.
				pkt := mustPkt(t)(tuntest.UDP(netip.AddrPortFrom(peer, 5555), conn.LocalAddr().(*net.UDPAddr).AddrPort(), []byte("from the device")))
				if n, err := dev.Write([][]byte{withOffset(pkt)}, readOffset); err != nil || n != 1 {
					t.Fatalf("Write = %d, %v", n, err)
				}
				buf := make([]byte, 100)
				conn.SetReadDeadline(time.Now().Add(waitTimeout))
				n, from, err := conn.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("receiving the written packet: %v", err)
				}
				if string(buf[:n]) != "from the device" || from.Addr().Unmap() != peer || from.Port() != 5555 {
					t.Errorf("received %q from %v", buf[:n], from)
				}

				// The kernel answers an echo request written into the
				// device, which checks the helpers' checksums too.
				req := mustPkt(t)(tuntest.ICMPEcho(peer, local, 42, 1, []byte("ping")))
				if _, err := dev.Write([][]byte{withOffset(req)}, readOffset); err != nil {
					t.Fatalf("Write: %v", err)
				}
				got = collect(t, packets, 1, func(p tuntest.Packet) bool {
					return p.ICMPID == 42 && (p.ICMPType == tuntest.ICMPv4EchoReply || p.ICMPType == tuntest.ICMPv6EchoReply)
				})
				if string(got[0].Payload) != "ping" || got[0].Dst.Addr() != peer {
					t.Errorf("echo reply %+v", got[0].Packet)
				}
			}
		})
	}
}

func listenUDP(t testing.TB, ns *nettest.NS, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := ns.Do(func() (err error) {
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		t.Fatalf("listening on %v: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func gsoPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// sendGSO sends count*size bytes to dst in one sendmsg with UDP_SEGMENT.
func sendGSO(t testing.TB, c *net.UDPConn, dst netip.AddrPort, count, size int) {
	t.Helper()
	oob := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(size))
	if _, _, err := c.WriteMsgUDPAddrPort(gsoPayload(count*size), oob, dst); err != nil {
		t.Fatalf("sending %d segments to %v: %v", count, dst, err)
	}
}

// tunPair is two devices in two namespaces, with the test copying packets
// between them: A (10.7.0.1) <-> copy loop <-> B (10.7.0.2).
type tunPair struct {
	nsA, nsB   *nettest.NS
	devA, devB tun.Device
	reads      atomic.Int64 // Read calls that returned packets
	packets    atomic.Int64 // packets they returned
	maxBatch   atomic.Int64
	writeErrs  atomic.Int64
}

func newTUNPair(tb testing.TB, disableOffloads bool) *tunPair {
	p := &tunPair{nsA: nettest.NewNS(tb), nsB: nettest.NewNS(tb)}
	p.devA = createIn(tb, p.nsA, tun.Options{DisableOffloads: disableOffloads})
	p.devB = createIn(tb, p.nsB, tun.Options{DisableOffloads: disableOffloads})
	configure(tb, p.nsA, p.devA, "10.7.0.1/24")
	configure(tb, p.nsB, p.devB, "10.7.0.2/24")
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.copy(p.devB, p.devA) }()
	go func() { defer wg.Done(); p.copy(p.devA, p.devB) }()
	tb.Cleanup(func() {
		p.devA.Close()
		p.devB.Close()
		wg.Wait()
	})
	return p
}

// copy moves batches from src to dst until either is closed.
func (p *tunPair) copy(dst, src tun.Device) {
	n := src.BatchSize()
	arrs, sizes := makeBufs(n)
	bufs := make([][]byte, n)
	for {
		// Write may have resized and reordered the slices: start over
		// from the arrays.
		copy(bufs, arrs)
		cnt, err := src.Read(bufs, sizes, readOffset)
		if errors.Is(err, wgtun.ErrTooManySegments) {
			continue
		}
		if err != nil {
			return
		}
		p.reads.Add(1)
		p.packets.Add(int64(cnt))
		if int64(cnt) > p.maxBatch.Load() {
			p.maxBatch.Store(int64(cnt))
		}
		out := bufs[:cnt]
		for i := range out {
			out[i] = out[i][:readOffset+sizes[i]]
		}
		if _, err := dst.Write(out, readOffset); err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			p.writeErrs.Add(1)
		}
	}
}

// transfer sends size bytes over TCP from A to B and returns the SHA-256
// of what was sent and of what arrived.
func (p *tunPair) transfer(tb testing.TB, size int) (sent, got [32]byte) {
	tb.Helper()
	var ln net.Listener
	if err := p.nsB.Do(func() (err error) {
		ln, err = net.Listen("tcp", "10.7.0.2:0")
		return err
	}); err != nil {
		tb.Fatalf("listening: %v", err)
	}
	defer ln.Close()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(waitTimeout))
	type result struct {
		sum [32]byte
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			res <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(waitTimeout))
		h := sha256.New()
		_, err = io.Copy(h, c)
		res <- result{sum: [32]byte(h.Sum(nil)), err: err}
	}()

	var c net.Conn
	if err := p.nsA.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", ln.Addr().String(), waitTimeout)
		return err
	}); err != nil {
		tb.Fatalf("dialing: %v", err)
	}
	c.SetDeadline(time.Now().Add(waitTimeout))
	data := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(data)
	_, werr := c.Write(data)
	c.Close()
	r := <-res
	if werr != nil || r.err != nil {
		tb.Fatalf("transfer: sending: %v; receiving: %v", werr, r.err)
	}
	return sha256.Sum256(data), r.sum
}

func TestTCPThroughTUNPair(t *testing.T) {
	for _, disable := range []bool{false, true} {
		t.Run(fmt.Sprintf("offloads=%v", !disable), func(t *testing.T) {
			p := newTUNPair(t, disable)
			sent, got := p.transfer(t, 16<<20)
			if sent != got {
				t.Errorf("data arrived corrupted: sent sha256 %x, got %x", sent, got)
			}
			reads, packets, maxBatch := p.reads.Load(), p.packets.Load(), p.maxBatch.Load()
			t.Logf("offloads %v: %d reads, %d packets, largest batch %d, %d write errors",
				p.devA.Offloads(), reads, packets, maxBatch, p.writeErrs.Load())
			if disable {
				if p.devA.BatchSize() != 1 || maxBatch != 1 {
					t.Errorf("BatchSize %d, largest batch %d; want 1 and 1 without offloads", p.devA.BatchSize(), maxBatch)
				}
			} else if maxBatch <= 1 {
				t.Errorf("largest batch %d; with offloads on, Read should split super-packets into batches", maxBatch)
			}
		})
	}
}

func BenchmarkTUNPairTCP(b *testing.B) {
	const size = 8 << 20
	for _, disable := range []bool{false, true} {
		b.Run(fmt.Sprintf("offloads=%v", !disable), func(b *testing.B) {
			p := newTUNPair(b, disable)
			b.SetBytes(size)
			b.ResetTimer()
			for b.Loop() {
				p.transfer(b, size)
			}
			b.StopTimer()
			if reads := p.reads.Load(); reads > 0 {
				b.ReportMetric(float64(p.packets.Load())/float64(reads), "pkts/read")
			}
		})
	}
}

func TestTAP(t *testing.T) {
	ns := nettest.NewNS(t)
	dev := createIn(t, ns, tun.Options{Kind: tun.KindTAP})
	configure(t, ns, dev, "10.8.0.1/24")
	frames := startReader(t, dev)

	// A datagram to a neighbour makes the kernel ask for its address.
	conn := listenUDP(t, ns, netip.MustParseAddrPort("10.8.0.1:0"))
	peerIP := netip.MustParseAddr("10.8.0.2")
	if _, err := conn.WriteToUDPAddrPort([]byte("via tap"), netip.AddrPortFrom(peerIP, 9)); err != nil {
		t.Fatal(err)
	}
	const etherTypeARP, etherTypeIPv4 = 0x0806, 0x0800
	next := func(etherType uint16, match func(frame []byte) bool) []byte {
		t.Helper()
		deadline := time.After(waitTimeout)
		for {
			select {
			case batch := <-frames:
				if len(batch) != 1 {
					t.Errorf("batch of %d frames from a TAP device", len(batch))
				}
				for _, f := range batch {
					if len(f) >= 14 && binary.BigEndian.Uint16(f[12:]) == etherType && match(f[14:]) {
						return f
					}
				}
			case <-deadline:
				t.Fatalf("no frame of type %#04x", etherType)
			}
		}
	}
	arp := next(etherTypeARP, func(p []byte) bool {
		return len(p) >= 28 && binary.BigEndian.Uint16(p[6:]) == 1 && netip.AddrFrom4([4]byte(p[24:28])) == peerIP
	})
	tapMAC := net.HardwareAddr(arp[6:12])
	peerMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}

	// Answer it; the kernel then sends the waiting datagram to the
	// address the reply gave.
	reply := make([]byte, 14+28)
	copy(reply[0:6], tapMAC)
	copy(reply[6:12], peerMAC)
	binary.BigEndian.PutUint16(reply[12:], etherTypeARP)
	a := reply[14:]
	binary.BigEndian.PutUint16(a[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(a[2:], 0x0800) // IPv4
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 2) // reply
	copy(a[8:14], peerMAC)
	copy(a[14:18], peerIP.AsSlice())
	copy(a[18:24], tapMAC)
	copy(a[24:28], netip.MustParseAddr("10.8.0.1").AsSlice())
	if _, err := dev.Write([][]byte{withOffset(reply)}, readOffset); err != nil {
		t.Fatalf("writing the ARP reply: %v", err)
	}
	frame := next(etherTypeIPv4, func(p []byte) bool {
		pkt, err := tuntest.Parse(p)
		return err == nil && pkt.Dst == netip.AddrPortFrom(peerIP, 9) && string(pkt.Payload) == "via tap"
	})
	if got := net.HardwareAddr(frame[0:6]); got.String() != peerMAC.String() {
		t.Errorf("datagram sent to %v, want %v (from the ARP reply)", got, peerMAC)
	}
}

// TestHandOverToUnprivilegedProcess creates a device, hands its descriptor
// to a child running as nobody, and pings through it: the child answers
// echo requests it reads with replies it writes.
func TestHandOverToUnprivilegedProcess(t *testing.T) {
	ns := nettest.NewNS(t)
	dev := createIn(t, ns, tun.Options{HandOver: true})
	configure(t, ns, dev, "10.5.0.1/24", "fd05::1/64")
	name := devName(t, dev)
	bin, err := testproc.CopySelf(testproc.Dir(t), "tun.test")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.ExtraFiles = []*os.File{dev.File()} // fd 3 in the child
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: 65534, Gid: 65534},
		Pdeathsig:  syscall.SIGKILL,
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Started from inside the namespace, the child lives there too.
	if err := ns.Do(cmd.Start); err != nil {
		t.Fatalf("starting child: %v", err)
	}
	waited := false
	t.Cleanup(func() {
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	// The child holds the interface open from now on.
	dev.Close()

	for _, dst := range []string{"10.5.0.2", "fd05::2"} {
		if err := ns.Ping(netip.MustParseAddr(dst), waitTimeout); err != nil {
			t.Errorf("ping %s through the child: %v", dst, err)
		}
	}
	stdin.Close() // tells the child to stop
	err = cmd.Wait()
	waited = true
	t.Logf("child output:\n%s%s", stdout.String(), stderr.String())
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	want := fmt.Sprintf("uid=65534 create-denied=true device name=%s kind=tun offloads=", name)
	if !strings.Contains(stdout.String(), want) {
		t.Errorf("child output lacks %q", want)
	}
	waitGone(t, ns, name)
}

// TestHandOverDevice checks a device opened with Options.HandOver: it names
// and sizes its interface and keeps it alive, cannot move packets, and its
// descriptor is not in the Go runtime's poller (a device opened for
// reading is), while a copy made from it moves packets as usual.
func TestHandOverDevice(t *testing.T) {
	for _, opts := range []tun.Options{{HandOver: true}, {HandOver: true, DisableOffloads: true}, {HandOver: true, Kind: tun.KindTAP}} {
		ns := nettest.NewNS(t)
		dev := createIn(t, ns, opts)
		plain := createIn(t, ns, tun.Options{Kind: opts.Kind, DisableOffloads: opts.DisableOffloads})
		polled := polledFDs(t)
		if fd := fdOf(t, dev.File()); polled[fd] {
			t.Errorf("%v: the hand-over device's descriptor %d is in the poller", opts, fd)
		}
		if fl, err := unix.FcntlInt(uintptr(fdOf(t, dev.File())), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK == 0 {
			t.Errorf("%v: the descriptor to hand over is blocking (flags %#x, %v), want non-blocking as any device's", opts, fl, err)
		}
		if fd := fdOf(t, plain.File()); !polled[fd] {
			t.Errorf("%v: a readable device's descriptor %d is not in the poller (the check sees nothing)", opts, fd)
		}
		if want := plain.Offloads(); dev.Offloads() != want || dev.Kind() != plain.Kind() {
			t.Errorf("%v: kind %v offloads %v, want %v %v", opts, dev.Kind(), dev.Offloads(), plain.Kind(), want)
		}
		if mtu, err := dev.MTU(); err != nil || mtu != 1500 {
			t.Errorf("%v: MTU = %d, %v", opts, mtu, err)
		}
		bufs, sizes := makeBufs(1)
		if _, err := dev.Read(bufs, sizes, readOffset); err == nil || !strings.Contains(err.Error(), "handed over") {
			t.Errorf("%v: Read: %v, want an error about the hand-over", opts, err)
		}
		if _, err := dev.Write([][]byte{withOffset([]byte{0x45})}, readOffset); err == nil || !strings.Contains(err.Error(), "handed over") {
			t.Errorf("%v: Write: %v, want an error about the hand-over", opts, err)
		}

		var dup tun.Device
		if err := ns.Do(func() (err error) { dup, err = tun.FromFile(dev.File()); return err }); err != nil {
			t.Fatalf("%v: FromFile: %v", opts, err)
		}
		name := devName(t, dev)
		if got, want := fmt.Sprintf("%s %v %v", devName(t, dup), dup.Kind(), dup.Offloads()), fmt.Sprintf("%s %v %v", name, dev.Kind(), dev.Offloads()); got != want {
			t.Errorf("FromFile device = %q, want %q", got, want)
		}
		if opts.Kind != tun.KindTAP {
			configure(t, ns, dev, "10.6.0.1/24")
			packets := startReader(t, dup)
			if err := ns.Do(func() error {
				c, err := net.Dial("udp", "10.6.0.2:9")
				if err != nil {
					return err
				}
				defer c.Close()
				_, err = c.Write([]byte("hand-over"))
				return err
			}); err != nil {
				t.Fatal(err)
			}
			collect(t, packets, 1, func(p tuntest.Packet) bool { return p.Proto == 17 && p.Dst.Port() == 9 })
		}
		if err := dev.Close(); err != nil {
			t.Errorf("%v: Close: %v", opts, err)
		}
		if err := dev.Close(); err != nil {
			t.Errorf("%v: second Close: %v", opts, err)
		}
		if _, ok := <-dev.Events(); ok {
			t.Errorf("%v: Events delivered an event, want a closed channel", opts)
		}
		if _, err := ns.Netlink(t).LinkByName(name); err != nil {
			t.Errorf("%v: interface gone while the copy is open: %v", opts, err)
		}
		dup.Close()
		plain.Close()
		waitGone(t, ns, name)
	}
}

// polledFDs returns the descriptors registered with this process's epoll
// instances (the Go runtime's poller among them), from /proc/self/fdinfo.
func polledFDs(t testing.TB) map[int]bool {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	fds := map[int]bool{}
	for _, e := range entries {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err != nil || target != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue // closed meanwhile
		}
		for line := range strings.Lines(string(info)) {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "tfd:" {
				var fd int
				if _, err := fmt.Sscan(f[1], &fd); err == nil {
					fds[fd] = true
				}
			}
		}
	}
	return fds
}

// fdOf returns f's descriptor number without changing its blocking mode.
func fdOf(t testing.TB, f *os.File) int {
	t.Helper()
	sc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	if err := sc.Control(func(raw uintptr) { fd = int(raw) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// runChild is the child side of TestHandOverToUnprivilegedProcess. It
// answers echo requests on the device at descriptor 3 until its standard
// input closes.
func runChild() int {
	fmt.Printf("uid=%d ", os.Geteuid())
	_, err := tun.Create(tun.Options{})
	fmt.Printf("create-denied=%v ", errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES))
	dev, err := tun.FromFD(3)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tun.FromFD:", err)
		return 1
	}
	name, _ := dev.Name()
	mtu, err := dev.MTU()
	fmt.Printf("device name=%s kind=%v offloads=%v batch=%d mtu=%d (%v)\n", name, dev.Kind(), dev.Offloads(), dev.BatchSize(), mtu, err)
	go func() {
		io.Copy(io.Discard, os.Stdin)
		dev.Close()
	}()
	go func() {
		time.Sleep(time.Minute)
		fmt.Fprintln(os.Stderr, "child: timed out")
		os.Exit(3)
	}()
	bufs, sizes := makeBufs(dev.BatchSize())
	replies := 0
	for {
		n, err := dev.Read(bufs, sizes, readOffset)
		if errors.Is(err, os.ErrClosed) {
			fmt.Printf("replied=%d\n", replies)
			return 0
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "Read:", err)
			continue
		}
		for i := range n {
			reply, err := tuntest.EchoReply(bufs[i][readOffset : readOffset+sizes[i]])
			if err != nil {
				continue // not an echo request
			}
			if _, err := dev.Write([][]byte{withOffset(reply)}, readOffset); err != nil {
				fmt.Fprintln(os.Stderr, "Write:", err)
				return 1
			}
			replies++
		}
	}
}

// TestWireGuardInterop runs wireguard-go on a device in each of two
// namespaces joined by a veth, and pings across the tunnel.
func TestWireGuardInterop(t *testing.T) {
	nsA, nsB := nettest.NewNS(t), nettest.NewNS(t)
	nettest.Veth(t, nsA, "veth0", nsB, "veth0")
	nsA.AddAddr(t, "veth0", "192.168.77.1/24")
	nsB.AddAddr(t, "veth0", "192.168.77.2/24")
	keys := [2]wgtypes.Key{mustKey(t), mustKey(t)}
	nss := [2]*nettest.NS{nsA, nsB}
	for i, ns := range nss {
		dev := createIn(t, ns, tun.Options{})
		wg := device.NewDevice(dev, conn.NewDefaultBind(), tuntest.WireGuardLogger(t, fmt.Sprintf("wg%d: ", i)))
		t.Cleanup(wg.Close)
		peer := keys[i^1].PublicKey()
		cfg := fmt.Sprintf("private_key=%s\nlisten_port=51820\npublic_key=%s\nendpoint=192.168.77.%d:51820\nallowed_ip=10.77.0.%d/32\nallowed_ip=fd77::%d/128\n",
			hex.EncodeToString(keys[i][:]), hex.EncodeToString(peer[:]), 2-i, 2-i, 2-i)
		// The bind's sockets are opened by IpcSet and Up, so both run
		// inside the namespace.
		if err := ns.Do(func() error {
			if err := wg.IpcSet(cfg); err != nil {
				return err
			}
			return wg.Up()
		}); err != nil {
			t.Fatalf("configuring wireguard-go in %s: %v", ns.Name, err)
		}
		configure(t, ns, dev, fmt.Sprintf("10.77.0.%d/24", i+1), fmt.Sprintf("fd77::%d/64", i+1))
	}
	for _, dst := range []string{"10.77.0.2", "fd77::2"} {
		if err := nsA.Ping(netip.MustParseAddr(dst), waitTimeout); err != nil {
			t.Errorf("ping %s over wireguard-go: %v", dst, err)
		}
	}
}

func mustKey(t testing.TB) wgtypes.Key {
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestFromFile(t *testing.T) {
	for _, opts := range []tun.Options{{}, {DisableOffloads: true}, {Kind: tun.KindTAP}} {
		ns := nettest.NewNS(t)
		dev := createIn(t, ns, opts)
		// Received in the interface's namespace, as a provider would.
		var dup tun.Device
		if err := ns.Do(func() (err error) { dup, err = tun.FromFile(dev.File()); return err }); err != nil {
			t.Fatalf("FromFile: %v", err)
		}
		t.Cleanup(func() { dup.Close() })
		name := devName(t, dev)
		want := fmt.Sprintf("%s %v %v %d", name, dev.Kind(), dev.Offloads(), dev.BatchSize())
		if got := fmt.Sprintf("%s %v %v %d", devName(t, dup), dup.Kind(), dup.Offloads(), dup.BatchSize()); got != want {
			t.Errorf("FromFile device = %q, want %q", got, want)
		}
		// The copy keeps the interface alive after the original closes.
		dev.Close()
		if _, err := ns.Netlink(t).LinkByName(name); err != nil {
			t.Errorf("interface gone while a copy is open: %v", err)
		}
		if mtu, err := dup.MTU(); err != nil || mtu != 1500 {
			t.Errorf("MTU of the copy = %d, %v", mtu, err)
		}
		dup.Close()
		waitGone(t, ns, name)
	}
}
