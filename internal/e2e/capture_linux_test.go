package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/netext/netext/internal/nettest"
)

// capture counts the IP packets crossing one link, as a packet socket in
// the link's namespace sees them, by direction, protocol and addresses.
// With offloads a packet may be a segmentation super-packet: sizes are
// what the socket saw, not what went on the wire.
type capture struct {
	fd   int
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex // guards flows and err
	flows map[flow]*flowCount
	err   error
}

// flow identifies packets: their direction on the link, IP protocol and
// addresses.
type flow struct {
	Out      bool // sent on the link, rather than received
	Proto    uint8
	Src, Dst netip.AddrPort
}

type flowCount struct {
	Packets, Bytes uint64
	Largest        int // the largest packet seen
}

// startCapture starts counting the packets of link ifname in ns, until
// the capture is stopped (at the latest in t.Cleanup).
func startCapture(t *testing.T, ns *nettest.NS, ifname string) *capture {
	t.Helper()
	c := &capture{fd: -1, stop: make(chan struct{}), done: make(chan struct{}), flows: map[flow]*flowCount{}}
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		proto := htons(unix.ETH_P_ALL)
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		c.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("binding the packet socket to %s: %w", ifname, err)
		}
		// A short receive timeout lets the reader see stop.
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100_000}); err != nil {
			return err
		}
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20)
	})
	if err != nil {
		if c.fd >= 0 {
			unix.Close(c.fd)
		}
		t.Fatalf("capturing on %s: %v", ifname, err)
	}
	go c.read()
	t.Cleanup(func() { c.Stop() })
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *capture) read() {
	defer close(c.done)
	buf := make([]byte, 128) // the headers are enough
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		n, from, err := unix.Recvfrom(c.fd, buf, unix.MSG_TRUNC)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok {
			continue
		}
		f, ok := parseFlow(buf[:min(n, len(buf))])
		if !ok {
			continue
		}
		f.Out = ll.Pkttype == unix.PACKET_OUTGOING
		c.mu.Lock()
		fc := c.flows[f]
		if fc == nil {
			fc = &flowCount{}
			c.flows[f] = fc
		}
		fc.Packets++
		fc.Bytes += uint64(n)
		fc.Largest = max(fc.Largest, n)
		c.mu.Unlock()
	}
}

// parseFlow reads the protocol, addresses and ports of an IP packet.
func parseFlow(b []byte) (flow, bool) {
	if len(b) < 1 {
		return flow{}, false
	}
	var f flow
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return flow{}, false
		}
		ihl := int(b[0]&0xf) * 4
		f.Proto = b[9]
		src, dst := netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		f.Src, f.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
		if len(b) >= ihl {
			l4 = b[ihl:]
		}
	case 6:
		if len(b) < 40 {
			return flow{}, false
		}
		f.Proto = b[6]
		src, dst := netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		f.Src, f.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
		l4 = b[40:]
	default:
		return flow{}, false
	}
	if (f.Proto == unix.IPPROTO_TCP || f.Proto == unix.IPPROTO_UDP) && len(l4) >= 4 {
		f.Src = netip.AddrPortFrom(f.Src.Addr(), binary.BigEndian.Uint16(l4[0:2]))
		f.Dst = netip.AddrPortFrom(f.Dst.Addr(), binary.BigEndian.Uint16(l4[2:4]))
	}
	return f, true
}

// Stop ends the capture and closes its socket. It may be called more than
// once.
func (c *capture) Stop() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// count sums the packets of the flows that match.
func (c *capture) count(match func(flow) bool) flowCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	var sum flowCount
	for f, fc := range c.flows {
		if match(f) {
			sum.Packets += fc.Packets
			sum.Bytes += fc.Bytes
			sum.Largest = max(sum.Largest, fc.Largest)
		}
	}
	return sum
}

// Err returns the error that ended the capture early, if any.
func (c *capture) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// String lists the flows seen, for failure messages.
func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := ""
	for f, fc := range c.flows {
		dir := "in "
		if f.Out {
			dir = "out"
		}
		s += fmt.Sprintf("%s proto %d %v -> %v: %d packets, %d bytes\n", dir, f.Proto, f.Src, f.Dst, fc.Packets, fc.Bytes)
	}
	return s
}
