package firewall

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/netext/netext/internal/nettest"
)

// env is the test network: nettest's topology plus a tunnel stand-in, a veth
// pair Client:tun0 <-> Internet:tunpeer. The client reaches the public host
// (on Internet) through eth0, the leak path, and the server through tun0,
// the tunnel path. Echo services listen on both and count what reaches them.
type env struct {
	*nettest.Topology
	Tun4, Tun6       netip.Prefix // on Client's tun0
	TunPeer4         netip.Addr
	Server4, Server6 netip.Addr
	public, server   *echo // on PublicHost4/6 and on the server
	lan              *echo // on ClientGW4/6: a host on the client's LAN
}

const (
	tunName  = "tun0"
	echoPort = 7
)

func newEnv(t *testing.T) *env {
	t.Helper()
	nettest.RequireRoot(t)
	e := &env{
		Topology: nettest.NewTopology(t),
		Tun4:     netip.MustParsePrefix("198.18.0.2/24"),
		Tun6:     netip.MustParsePrefix("2001:db8:7::2/64"),
		TunPeer4: netip.MustParseAddr("198.18.0.1"),
	}
	e.Server4, e.Server6 = e.ServerAddr4.Addr(), e.ServerAddr6.Addr()
	nettest.Veth(t, e.Client, tunName, e.Internet, "tunpeer")
	e.Client.AddAddr(t, tunName, e.Tun4.String())
	e.Client.AddAddr(t, tunName, e.Tun6.String())
	e.Internet.AddAddr(t, "tunpeer", netip.PrefixFrom(e.TunPeer4, 24).String())
	e.Internet.AddAddr(t, "tunpeer", "2001:db8:7::1/64")
	e.Client.Run(t, "ip", "route", "add", "203.0.113.0/24", "via", e.TunPeer4.String(), "dev", tunName)
	e.Client.Run(t, "ip", "-6", "route", "add", "2001:db8:5::/64", "via", "2001:db8:7::1", "dev", tunName)
	e.Client.WaitNoTentative(t)
	e.Internet.WaitNoTentative(t)
	e.Server.WaitNoTentative(t)
	e.public = startEcho(t, e.Internet, e.PublicHost4, e.PublicHost6)
	e.server = startEcho(t, e.Server, e.Server4, e.Server6)
	e.lan = startEcho(t, e.Internet, e.ClientGW4, e.ClientGW6)
	e.Client.WaitPing(t, e.PublicHost4, 10*time.Second)
	e.Client.WaitPing(t, e.Server4, 10*time.Second)
	e.Client.WaitPing(t, e.Server6, 10*time.Second)
	return e
}

func (e *env) manager(t *testing.T) *Manager {
	t.Helper()
	m, err := New(Options{NetNS: e.Client.Handle()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// tunnel is a Tunnel for tun0 with both families and the default routes.
func tunnel() Tunnel {
	return Tunnel{Interface: tunName, IPv4: true, IPv6: true, DefaultIPv4: true, DefaultIPv6: true}
}

// echo answers UDP and TCP on ports 7, 53 and 853 of its addresses, and
// counts the datagrams and connections that reached it.
type echo struct {
	packets atomic.Int64
}

func startEcho(t *testing.T, ns *nettest.NS, addrs ...netip.Addr) *echo {
	t.Helper()
	e := &echo{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var closers []func() error // guarded by mu
	for _, a := range addrs {
		for _, port := range []int{echoPort, 53, 853} {
			ap := netip.AddrPortFrom(a, uint16(port)).String()
			var pc net.PacketConn
			var ln net.Listener
			if err := ns.Do(func() (err error) {
				if pc, err = net.ListenPacket("udp", ap); err != nil {
					return err
				}
				ln, err = net.Listen("tcp", ap)
				return err
			}); err != nil {
				t.Fatalf("echo on %s: %v", ap, err)
			}
			mu.Lock()
			closers = append(closers, pc.Close, ln.Close)
			mu.Unlock()
			wg.Add(2)
			go func() {
				defer wg.Done()
				buf := make([]byte, 2048)
				for {
					n, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					e.packets.Add(1)
					pc.WriteTo(buf[:n], from)
				}
			}()
			go func() {
				defer wg.Done()
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					e.packets.Add(1)
					mu.Lock()
					closers = append(closers, c.Close)
					mu.Unlock()
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer c.Close()
						c.SetDeadline(time.Now().Add(20 * time.Second))
						buf := make([]byte, 2048)
						for {
							n, err := c.Read(buf)
							if err != nil {
								return
							}
							c.Write(buf[:n])
						}
					}()
				}
			}()
		}
	}
	t.Cleanup(func() {
		mu.Lock()
		for _, c := range closers {
			c()
		}
		mu.Unlock()
		wg.Wait()
	})
	return e
}

// sockOpts are the socket options of a probe.
type sockOpts struct {
	mark uint32     // SO_MARK
	dev  string     // SO_BINDTODEVICE
	src  netip.Addr // local address; zero for any
}

func (o sockOpts) dialer() *net.Dialer {
	d := &net.Dialer{Control: o.control, Timeout: probeTimeout}
	if o.src.IsValid() {
		d.LocalAddr = &net.UDPAddr{IP: o.src.AsSlice()}
	}
	return d
}

func (o sockOpts) control(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if o.mark != 0 {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(o.mark))
		}
		if serr == nil && o.dev != "" {
			serr = unix.BindToDevice(int(fd), o.dev)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// outcome of a probe.
const (
	passed   = "passed"
	rejected = "rejected"
	timedOut = "timed out"
)

const probeTimeout = 2 * time.Second

// classify turns a probe's error into an outcome: rejected means the
// application got an error of the kind a rejecting firewall causes.
func classify(err error) string {
	switch {
	case err == nil:
		return passed
	case errors.Is(err, os.ErrDeadlineExceeded):
		return timedOut
	case errors.Is(err, unix.ECONNREFUSED), errors.Is(err, unix.EHOSTUNREACH), errors.Is(err, unix.EACCES),
		errors.Is(err, unix.EPERM), errors.Is(err, unix.ECONNRESET), errors.Is(err, unix.ENETUNREACH):
		return rejected
	}
	return "error: " + err.Error()
}

// probeUDP sends one datagram from the client to dst and waits for the echo.
func probeUDP(ns *nettest.NS, dst netip.AddrPort, o sockOpts) string {
	var c net.Conn
	if err := ns.Do(func() (err error) {
		c, err = o.dialer().Dial("udp", dst.String())
		return err
	}); err != nil {
		return classify(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := c.Write([]byte("netext-probe")); err != nil {
		return classify(err)
	}
	buf := make([]byte, 64)
	_, err := c.Read(buf)
	return classify(err)
}

// probeTCP connects from the client to dst and exchanges one message.
func probeTCP(ns *nettest.NS, dst netip.AddrPort, o sockOpts) string {
	c, err := dialTCP(ns, dst, o)
	if err != nil {
		return classify(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := c.Write([]byte("netext-probe")); err != nil {
		return classify(err)
	}
	buf := make([]byte, 64)
	_, err = c.Read(buf)
	return classify(err)
}

func dialTCP(ns *nettest.NS, dst netip.AddrPort, o sockOpts) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		d := o.dialer()
		if o.src.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: o.src.AsSlice()}
		}
		c, err = d.Dial("tcp", dst.String())
		return err
	})
	return c, err
}

// probeICMP sends one echo request and waits for the reply or an ICMP
// error (admin-prohibited from our reject rule).
func probeICMP(ns *nettest.NS, dst netip.Addr) string {
	network, listen, typ, proto := "ip4:icmp", "0.0.0.0", icmp.Type(ipv4.ICMPTypeEcho), 1
	if dst.Is6() {
		network, listen, typ, proto = "ip6:ipv6-icmp", "::", ipv6.ICMPTypeEchoRequest, 58
	}
	var c *icmp.PacketConn
	if err := ns.Do(func() (err error) {
		c, err = icmp.ListenPacket(network, listen)
		return err
	}); err != nil {
		return classify(err)
	}
	defer c.Close()
	id := os.Getpid() & 0xffff
	msg, _ := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("netext-probe")}}).Marshal(nil)
	if _, err := c.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return classify(err)
	}
	c.SetReadDeadline(time.Now().Add(probeTimeout))
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return classify(err)
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			continue
		}
		switch m.Type {
		case ipv4.ICMPTypeEchoReply, ipv6.ICMPTypeEchoReply:
			if src, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP); src.Unmap() == dst {
				return passed
			}
		case ipv4.ICMPTypeDestinationUnreachable, ipv6.ICMPTypeDestinationUnreachable:
			return rejected
		}
	}
}

// probes runs TCP, UDP, ICMP and DNS (UDP and TCP port 53) from the client
// to dst and returns their outcomes.
func probes(ns *nettest.NS, dst netip.Addr, o sockOpts) map[string]string {
	out := map[string]string{
		"tcp":     probeTCP(ns, netip.AddrPortFrom(dst, echoPort), o),
		"udp":     probeUDP(ns, netip.AddrPortFrom(dst, echoPort), o),
		"dns/udp": probeUDP(ns, netip.AddrPortFrom(dst, 53), o),
		"dns/tcp": probeTCP(ns, netip.AddrPortFrom(dst, 53), o),
	}
	if o.mark == 0 && o.dev == "" {
		out["icmp"] = probeICMP(ns, dst)
	}
	return out
}

func all(outcome string, withICMP bool) map[string]string {
	m := map[string]string{"tcp": outcome, "udp": outcome, "dns/udp": outcome, "dns/tcp": outcome}
	if withICMP {
		m["icmp"] = outcome
	}
	return m
}

// dialUDPIn returns a UDP socket of ns connected to dst's echo port.
func dialUDPIn(ns *nettest.NS, dst netip.Addr) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		c, err = net.Dial("udp", netip.AddrPortFrom(dst, echoPort).String())
		return err
	})
	return c, err
}
