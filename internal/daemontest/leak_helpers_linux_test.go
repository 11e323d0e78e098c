package daemontest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/firewall"
	"github.com/netext/netext/internal/nettest"
	"github.com/netext/netext/internal/testproc"
)

// reassertID is the id of the reasserting sample provider
// (testdata/reassertprovider).
const reassertID = "org.netext.sample-reassert"

var (
	reassertOnce sync.Once
	reassertErr  error
)

// installReassertProvider builds testdata/reassertprovider next to the
// other executables and installs its manifest.
func installReassertProvider(t *testing.T) {
	t.Helper()
	bin(t, "netextd") // the directories
	reassertOnce.Do(func() {
		reassertErr = testproc.Install(root, nil, testproc.Provider{ID: reassertID,
			Description: "Sample tunnel that reasserts on request", Package: "github.com/netext/netext/internal/daemontest/testdata/reassertprovider"})
	})
	if reassertErr != nil {
		t.Fatal(reassertErr)
	}
}

// The ports of the public services.
const (
	echoPort = 7
	dnsPort  = 53
)

// publicHostName is the name the DNS service answers with the public
// host's addresses.
const publicHostName = "public.test."

// startPublicServices serves, in the internet namespace, a TCP echo and a
// UDP echo on port 7 and DNS on port 53, until the test ends: on the
// public host's addresses and on the router's IPv4 address on the
// client's link (the LAN host). The applications of the leak tests talk to them.
func startPublicServices(t *testing.T, tp *nettest.Topology) {
	t.Helper()
	var (
		tl  net.Listener
		ucs []net.PacketConn // one per address, so that answers come from it
		dnc net.PacketConn
	)
	err := tp.Internet.Do(func() error {
		var err error
		if tl, err = net.Listen("tcp", fmt.Sprintf(":%d", echoPort)); err != nil {
			return err
		}
		for _, a := range []netip.Addr{tp.PublicHost4, tp.PublicHost6, tp.ClientGW4} {
			uc, err := net.ListenPacket("udp", netip.AddrPortFrom(a, echoPort).String())
			if err != nil {
				return err
			}
			ucs = append(ucs, uc)
		}
		dnc, err = net.ListenPacket("udp", fmt.Sprintf(":%d", dnsPort))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1 + len(ucs))
	go func() {
		defer wg.Done()
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				io.Copy(c, c)
			}()
		}
	}()
	for _, uc := range ucs {
		go func() {
			defer wg.Done()
			buf := make([]byte, 2048)
			for {
				n, from, err := uc.ReadFrom(buf)
				if err != nil {
					return
				}
				uc.WriteTo(buf[:n], from)
			}
		}()
	}
	srv := &dns.Server{PacketConn: dnc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA && strings.EqualFold(q.Name, publicHostName) {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: tp.PublicHost4.AsSlice()})
			}
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	served := make(chan error, 1)
	go func() { served <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-served:
		t.Fatalf("DNS service: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("DNS service did not start within 10s")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		tl.Close()
		for _, uc := range ucs {
			uc.Close()
		}
		wg.Wait()
	})
}

// outcome is what an application saw of one probe.
type outcome string

const (
	answered outcome = "answered" // the service answered
	rejected outcome = "rejected" // an error at once (reset, EPERM, unreachable)
	timedOut outcome = "timeout"  // no answer within probeTimeout
)

// probeTimeout bounds each probe.
const probeTimeout = 2 * time.Second

// classify sorts the error of a probe.
func classify(err error) outcome {
	var ne net.Error
	switch {
	case err == nil:
		return answered
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded), strings.Contains(err.Error(), "no reply within"):
		return timedOut
	}
	return rejected
}

// probes are the outcomes of the four probes of an application: TCP, UDP,
// ICMP and DNS.
type probes struct {
	TCP, UDP, ICMP, DNS outcome
}

func (p probes) String() string {
	return fmt.Sprintf("tcp %s, udp %s, icmp %s, dns %s", p.TCP, p.UDP, p.ICMP, p.DNS)
}

// all returns probes that all had the outcome o.
func all(o outcome) probes { return probes{o, o, o, o} }

// application sends, from the client namespace, a TCP exchange, a UDP
// exchange, an ICMP echo and a DNS query to dst, each its own socket, and
// reports what it saw. bindDev, when set, binds the sockets to that
// interface (SO_BINDTODEVICE), as applications that pick an interface do.
func application(ns *nettest.NS, dst netip.Addr, bindDev string) probes {
	control := func(network, address string, c syscall.RawConn) error {
		if bindDev == "" {
			return nil
		}
		var serr error
		err := c.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), bindDev) })
		return errors.Join(err, serr)
	}
	d := net.Dialer{Timeout: probeTimeout, Control: control}
	exchange := func(network string, port int) error {
		var err error
		if derr := ns.Do(func() error {
			c, err2 := d.Dial(network, netip.AddrPortFrom(dst, uint16(port)).String())
			if err2 != nil {
				err = err2
				return nil
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(probeTimeout))
			if _, err = c.Write([]byte("leak test\n")); err != nil {
				return nil
			}
			buf := make([]byte, 64)
			_, err = c.Read(buf)
			return nil
		}); derr != nil {
			return derr
		}
		return err
	}
	var p probes
	p.TCP = classify(exchange("tcp", echoPort))
	p.UDP = classify(exchange("udp", echoPort))
	if bindDev == "" {
		p.ICMP = classify(ns.Ping(dst, probeTimeout))
	} else {
		p.ICMP = "-"
	}
	p.DNS = classify(func() error {
		var err error
		if derr := ns.Do(func() error {
			c, err2 := d.Dial("udp", netip.AddrPortFrom(dst, dnsPort).String())
			if err2 != nil {
				err = err2
				return nil
			}
			co := &dns.Conn{Conn: c}
			defer co.Close()
			co.SetDeadline(time.Now().Add(probeTimeout))
			m := new(dns.Msg)
			m.SetQuestion(publicHostName, dns.TypeA)
			if err = co.WriteMsg(m); err != nil {
				return nil
			}
			var r *dns.Msg
			if r, err = co.ReadMsg(); err == nil && len(r.Answer) == 0 {
				err = fmt.Errorf("no answer: %v", r)
			}
			return nil
		}); derr != nil {
			return derr
		}
		return err
	}())
	return p
}

// capture records the packets that leave the client namespace on its
// underlay link, other than the provider's transport to the server and
// link control (ARP, IPv6 neighbour discovery and multicast listener
// reports): every packet that bypasses the tunnel.
type capture struct {
	t      *testing.T
	fd     int // AF_PACKET socket bound to the link
	send   int // AF_PACKET socket that sends the markers
	ifi    int
	mac    net.HardwareAddr
	server netip.AddrPort
	done   chan struct{}

	mu      sync.Mutex
	pkts    []captured
	markers uint32 // the last marker seen
	next    uint32 // the next marker to send
}

// captured is one packet that left outside the tunnel.
type captured struct {
	dst  netip.Addr
	desc string
}

// markerType is the EtherType of the frames that mark the end of a
// measurement (IEEE 802 local experimental).
const markerType = 0x88b5

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// startCapture captures on link ifname of ns until the test ends.
func startCapture(t *testing.T, ns *nettest.NS, ifname string, server netip.AddrPort) *capture {
	t.Helper()
	c := &capture{t: t, server: server, done: make(chan struct{})}
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		c.ifi, c.mac = ifi.Index, ifi.HardwareAddr
		for _, fd := range []*int{&c.fd, &c.send} {
			*fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
			if err != nil {
				return fmt.Errorf("AF_PACKET socket: %w", err)
			}
		}
		return unix.Bind(c.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: c.ifi})
	})
	if err != nil {
		t.Fatal(err)
	}
	tv := unix.Timeval{Usec: 100_000}
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		buf := make([]byte, 65536)
		for {
			select {
			case <-c.done:
				return
			default:
			}
			n, from, err := unix.Recvfrom(c.fd, buf, 0)
			if err != nil {
				continue
			}
			sll, ok := from.(*unix.SockaddrLinklayer)
			if !ok || sll.Pkttype != unix.PACKET_OUTGOING {
				continue
			}
			c.record(buf[:n])
		}
	}()
	t.Cleanup(func() {
		close(c.done)
		<-stopped
		unix.Close(c.fd)
		unix.Close(c.send)
	})
	return c
}

// record classifies one outgoing Ethernet frame.
func (c *capture) record(f []byte) {
	if len(f) < 14 {
		return
	}
	typ := binary.BigEndian.Uint16(f[12:14])
	p := f[14:]
	c.mu.Lock()
	defer c.mu.Unlock()
	switch typ {
	case markerType:
		if len(p) >= 4 {
			c.markers = binary.BigEndian.Uint32(p)
		}
		return
	case unix.ETH_P_ARP:
		return
	case unix.ETH_P_IP:
		if len(p) < 20 {
			return
		}
		ihl := int(p[0]&0xf) * 4
		src, dst := netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
		proto := p[9]
		var sport, dport uint16
		if (proto == unix.IPPROTO_UDP || proto == unix.IPPROTO_TCP) && len(p) >= ihl+4 {
			sport, dport = binary.BigEndian.Uint16(p[ihl:]), binary.BigEndian.Uint16(p[ihl+2:])
		}
		if proto == unix.IPPROTO_UDP && netip.AddrPortFrom(dst, dport) == c.server {
			return // the provider's transport
		}
		c.pkts = append(c.pkts, captured{dst, fmt.Sprintf("%s %s:%d > %s:%d", protoName(proto), src, sport, dst, dport)})
	case unix.ETH_P_IPV6:
		if len(p) < 40 {
			return
		}
		src, dst := netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
		next := p[6]
		if next == unix.IPPROTO_HOPOPTS || next == unix.IPPROTO_ICMPV6 && len(p) > 40 && isLinkControl6(p[40]) {
			return // neighbour discovery, multicast listener reports
		}
		var sport, dport uint16
		if (next == unix.IPPROTO_UDP || next == unix.IPPROTO_TCP) && len(p) >= 44 {
			sport, dport = binary.BigEndian.Uint16(p[40:]), binary.BigEndian.Uint16(p[42:])
		}
		c.pkts = append(c.pkts, captured{dst, fmt.Sprintf("%s [%s]:%d > [%s]:%d", protoName(next), src, sport, dst, dport)})
	default:
		c.pkts = append(c.pkts, captured{desc: fmt.Sprintf("ethertype %#04x", typ)})
	}
}

// isLinkControl6 reports whether an ICMPv6 type is neighbour discovery
// (133-137) or multicast listener discovery (130-132, 143).
func isLinkControl6(typ byte) bool {
	return typ >= 130 && typ <= 137 || typ == 143
}

func protoName(p byte) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_ICMP:
		return "icmp"
	case unix.IPPROTO_ICMPV6:
		return "icmpv6"
	}
	return fmt.Sprintf("proto %d", p)
}

// take returns the packets captured since the last take. It first sends a
// marker frame out of the link and waits until the capture saw it, so
// that every packet sent before take is in the result.
func (c *capture) take() []captured {
	c.t.Helper()
	c.mu.Lock()
	c.next++
	m := c.next
	c.mu.Unlock()
	frame := make([]byte, 60)
	copy(frame[0:6], []byte{0x02, 0, 0, 0, 0, 0x01})
	copy(frame[6:12], c.mac)
	binary.BigEndian.PutUint16(frame[12:14], markerType)
	binary.BigEndian.PutUint32(frame[14:18], m)
	to := &unix.SockaddrLinklayer{Protocol: htons(markerType), Ifindex: c.ifi, Halen: 6}
	copy(to.Addr[:], frame[0:6])
	if err := unix.Sendto(c.send, frame, 0, to); err != nil {
		c.t.Fatalf("sending the capture marker: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		seen := c.markers >= m
		var out []captured
		if seen {
			out, c.pkts = c.pkts, nil
		}
		c.mu.Unlock()
		if seen {
			return out
		}
		if time.Now().After(deadline) {
			c.t.Fatal("the capture did not see its marker within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rejectedPackets sums the counters of the rules of our table that
// reject packets on their way out.
func rejectedPackets(t *testing.T, fw *firewall.Manager) uint64 {
	t.Helper()
	cs, err := fw.Counters()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range cs {
		if strings.HasPrefix(c.Rule, "reject") {
			n += c.Packets
		}
	}
	return n
}

// configure creates the configuration name of provider id, with the
// sample provider's configuration pc and the given protections.
func (e *env) configure(name, id, pc string, set func(*apitype.Configuration)) {
	e.t.Helper()
	c := apitype.Configuration{Name: name, ProviderID: id, ServerAddress: e.server.String(), ProviderConfiguration: json.RawMessage(pc), Enabled: true}
	if set != nil {
		set(&c)
	}
	secret := apitype.Secret(e.key.Base64())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.client.CreateConfiguration(ctx, c, &secret); err != nil {
		e.t.Fatal(err)
	}
}

// pidsOf returns the pids of the processes running the test executable
// name.
func pidsOf(t *testing.T, name string) []int {
	t.Helper()
	exe := filepath.Join(root, "bin", name)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, ent := range ents {
		var pid int
		if _, err := fmt.Sscan(ent.Name(), &pid); err != nil {
			continue
		}
		if p, err := os.Readlink(filepath.Join("/proc", ent.Name(), "exe")); err == nil && p == exe {
			pids = append(pids, pid)
		}
	}
	return pids
}
