package nettest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Ping sends one ICMP (or ICMPv6) echo request to dst from inside the
// namespace and waits up to timeout for the matching reply. It returns nil
// when the reply came from dst.
func (ns *NS) Ping(dst netip.Addr, timeout time.Duration) error {
	network, listen := "ip4:icmp", "0.0.0.0"
	var typ icmp.Type = ipv4.ICMPTypeEcho
	var replyType icmp.Type = ipv4.ICMPTypeEchoReply
	proto := 1
	if dst.Is6() && !dst.Is4In6() {
		network, listen, typ, replyType, proto = "ip6:ipv6-icmp", "::", ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	var conn *icmp.PacketConn
	if err := ns.Do(func() error {
		var err error
		conn, err = icmp.ListenPacket(network, listen)
		return err
	}); err != nil {
		return fmt.Errorf("in %s: opening ICMP socket: %w", ns.Name, err)
	}
	defer conn.Close()

	id, seq := rand.IntN(0xffff), rand.IntN(0xffff)
	payload := []byte("netext-ping")
	msg, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: payload}}).Marshal(nil)
	if err != nil {
		return fmt.Errorf("building echo request: %w", err)
	}
	if _, err := conn.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}); err != nil {
		return fmt.Errorf("in %s: ping %s: %w", ns.Name, dst, err)
	}
	deadline := time.Now().Add(timeout)
	if err := conn.SetReadDeadline(deadline); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("in %s: ping %s: no reply within %v", ns.Name, dst, timeout)
		}
		if err != nil {
			return fmt.Errorf("in %s: ping %s: %w", ns.Name, dst, err)
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != replyType {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || echo.ID != id || echo.Seq != seq {
			continue
		}
		src, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
		if src.Unmap() != dst.WithZone("") {
			return fmt.Errorf("in %s: ping %s: reply came from %s", ns.Name, dst, src)
		}
		return nil
	}
}
