package tuntest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// IP protocol numbers used by the helpers.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// ICMP message types used by the helpers.
const (
	ICMPv4EchoReply   = 0
	ICMPv4EchoRequest = 8
	ICMPv6EchoRequest = 128
	ICMPv6EchoReply   = 129
)

const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	udpHeaderLen  = 8
	icmpHeaderLen = 8
	hopLimit      = 64
)

// UDP returns an IPv4 or IPv6 UDP packet from src to dst carrying payload,
// with valid checksums. src and dst must be of the same family.
func UDP(src, dst netip.AddrPort, payload []byte) ([]byte, error) {
	l4 := make([]byte, udpHeaderLen+len(payload))
	binary.BigEndian.PutUint16(l4[0:], src.Port())
	binary.BigEndian.PutUint16(l4[2:], dst.Port())
	binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	copy(l4[udpHeaderLen:], payload)
	return ipPacket(src.Addr(), dst.Addr(), ProtoUDP, l4, 6)
}

// ICMPEcho returns an ICMP (IPv4) or ICMPv6 (IPv6) echo request from src to
// dst, with valid checksums. src and dst must be of the same family.
func ICMPEcho(src, dst netip.Addr, id, seq uint16, payload []byte) ([]byte, error) {
	typ := uint8(ICMPv4EchoRequest)
	if dst.Is6() {
		typ = ICMPv6EchoRequest
	}
	return icmpEcho(src, dst, typ, id, seq, payload)
}

// EchoReply returns the echo reply to the echo request req, as the
// request's destination would send it.
func EchoReply(req []byte) ([]byte, error) {
	p, err := Parse(req)
	if err != nil {
		return nil, err
	}
	var want, reply uint8 = ICMPv4EchoRequest, ICMPv4EchoReply
	if p.Proto == ProtoICMPv6 {
		want, reply = ICMPv6EchoRequest, ICMPv6EchoReply
	} else if p.Proto != ProtoICMP {
		return nil, fmt.Errorf("tuntest: EchoReply: protocol %d is not ICMP", p.Proto)
	}
	if p.ICMPType != want {
		return nil, fmt.Errorf("tuntest: EchoReply: ICMP type %d is not an echo request", p.ICMPType)
	}
	return icmpEcho(p.Dst.Addr(), p.Src.Addr(), reply, p.ICMPID, p.ICMPSeq, p.Payload)
}

func icmpEcho(src, dst netip.Addr, typ uint8, id, seq uint16, payload []byte) ([]byte, error) {
	l4 := make([]byte, icmpHeaderLen+len(payload))
	l4[0] = typ
	binary.BigEndian.PutUint16(l4[4:], id)
	binary.BigEndian.PutUint16(l4[6:], seq)
	copy(l4[icmpHeaderLen:], payload)
	proto := uint8(ProtoICMP)
	if dst.Is6() {
		proto = ProtoICMPv6
	}
	return ipPacket(src, dst, proto, l4, 2)
}

// ipPacket prepends an IP header to the transport segment l4 and fills in
// the transport checksum at l4[csumAt].
func ipPacket(src, dst netip.Addr, proto uint8, l4 []byte, csumAt int) ([]byte, error) {
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return nil, fmt.Errorf("tuntest: source %v and destination %v must be valid addresses of one family", src, dst)
	}
	var pkt []byte
	if src.Is4() {
		if ipv4HeaderLen+len(l4) > 0xffff {
			return nil, errors.New("tuntest: packet too large")
		}
		pkt = make([]byte, ipv4HeaderLen+len(l4))
		ip := pkt[:ipv4HeaderLen]
		ip[0] = 4<<4 | ipv4HeaderLen/4
		binary.BigEndian.PutUint16(ip[2:], uint16(len(pkt)))
		binary.BigEndian.PutUint16(ip[6:], 0x4000) // don't fragment
		ip[8] = hopLimit
		ip[9] = proto
		copy(ip[12:16], src.AsSlice())
		copy(ip[16:20], dst.AsSlice())
		binary.BigEndian.PutUint16(ip[10:], ^fold(sum(ip, 0)))
	} else {
		if len(l4) > 0xffff {
			return nil, errors.New("tuntest: packet too large")
		}
		pkt = make([]byte, ipv6HeaderLen+len(l4))
		ip := pkt[:ipv6HeaderLen]
		ip[0] = 6 << 4
		binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
		ip[6] = proto
		ip[7] = hopLimit
		copy(ip[8:24], src.AsSlice())
		copy(ip[24:40], dst.AsSlice())
	}
	seg := pkt[len(pkt)-len(l4):]
	copy(seg, l4)
	var initial uint32
	if proto != ProtoICMP {
		initial = pseudoHeaderSum(src, dst, proto, len(seg))
	}
	c := ^fold(sum(seg, initial))
	if c == 0 && proto == ProtoUDP {
		c = 0xffff // zero means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(seg[csumAt:], c)
	return pkt, nil
}

// Packet is a parsed IPv4 or IPv6 packet. Its slices alias the parsed bytes.
type Packet struct {
	// Src and Dst are the addresses, with the ports for UDP and TCP.
	Src, Dst netip.AddrPort
	// Proto is the IP protocol number, such as ProtoUDP. IPv6 extension
	// headers are not followed, so it is the first Next Header.
	Proto uint8
	// ICMPType, ICMPCode, ICMPID and ICMPSeq are set for ICMP and ICMPv6;
	// the last two only mean something for echo messages.
	ICMPType, ICMPCode uint8
	ICMPID, ICMPSeq    uint16
	// Payload is the UDP or TCP data, the ICMP data after the 8-byte
	// header, or everything after the IP header for other protocols.
	Payload []byte
}

// Parse parses an IP packet and checks its lengths and checksums: the IPv4
// header checksum, and the UDP, TCP, ICMP and ICMPv6 checksums. Bytes past
// the IP packet's own length are ignored.
func Parse(pkt []byte) (Packet, error) {
	var p Packet
	if len(pkt) < 1 {
		return p, errors.New("tuntest: empty packet")
	}
	var src, dst netip.Addr
	var l4 []byte
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < ipv4HeaderLen {
			return p, fmt.Errorf("tuntest: %d bytes is too short for IPv4", len(pkt))
		}
		hl := int(pkt[0]&0xf) * 4
		total := int(binary.BigEndian.Uint16(pkt[2:]))
		if hl < ipv4HeaderLen || total < hl || total > len(pkt) {
			return p, fmt.Errorf("tuntest: bad IPv4 lengths: header %d, total %d, have %d", hl, total, len(pkt))
		}
		if fold(sum(pkt[:hl], 0)) != 0xffff {
			return p, errors.New("tuntest: bad IPv4 header checksum")
		}
		if binary.BigEndian.Uint16(pkt[6:])&0x3fff != 0 {
			return p, errors.New("tuntest: IPv4 fragments are not supported")
		}
		p.Proto = pkt[9]
		src = netip.AddrFrom4([4]byte(pkt[12:16]))
		dst = netip.AddrFrom4([4]byte(pkt[16:20]))
		l4 = pkt[hl:total]
	case 6:
		if len(pkt) < ipv6HeaderLen {
			return p, fmt.Errorf("tuntest: %d bytes is too short for IPv6", len(pkt))
		}
		plen := int(binary.BigEndian.Uint16(pkt[4:]))
		if ipv6HeaderLen+plen > len(pkt) {
			return p, fmt.Errorf("tuntest: IPv6 payload length %d exceeds the %d bytes present", plen, len(pkt)-ipv6HeaderLen)
		}
		p.Proto = pkt[6]
		src = netip.AddrFrom16([16]byte(pkt[8:24]))
		dst = netip.AddrFrom16([16]byte(pkt[24:40]))
		l4 = pkt[ipv6HeaderLen : ipv6HeaderLen+plen]
	default:
		return p, fmt.Errorf("tuntest: IP version %d", pkt[0]>>4)
	}
	p.Src, p.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
	checked := true
	switch p.Proto {
	case ProtoUDP:
		if len(l4) < udpHeaderLen || int(binary.BigEndian.Uint16(l4[4:])) != len(l4) {
			return p, fmt.Errorf("tuntest: bad UDP length in a %d-byte segment", len(l4))
		}
		checked = !(src.Is4() && binary.BigEndian.Uint16(l4[6:]) == 0)
		p.Payload = l4[udpHeaderLen:]
	case ProtoTCP:
		if len(l4) < 20 || int(l4[12]>>4)*4 < 20 || int(l4[12]>>4)*4 > len(l4) {
			return p, fmt.Errorf("tuntest: bad TCP header in a %d-byte segment", len(l4))
		}
		p.Payload = l4[int(l4[12]>>4)*4:]
	case ProtoICMP, ProtoICMPv6:
		if len(l4) < icmpHeaderLen {
			return p, fmt.Errorf("tuntest: %d-byte ICMP message is too short", len(l4))
		}
		p.ICMPType, p.ICMPCode = l4[0], l4[1]
		p.ICMPID, p.ICMPSeq = binary.BigEndian.Uint16(l4[4:]), binary.BigEndian.Uint16(l4[6:])
		p.Payload = l4[icmpHeaderLen:]
	default:
		p.Payload = l4
		return p, nil
	}
	if p.Proto == ProtoUDP || p.Proto == ProtoTCP {
		p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:]))
		p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:]))
	}
	if checked {
		var initial uint32
		if p.Proto != ProtoICMP {
			initial = pseudoHeaderSum(src, dst, p.Proto, len(l4))
		}
		if fold(sum(l4, initial)) != 0xffff {
			return p, fmt.Errorf("tuntest: bad protocol %d checksum", p.Proto)
		}
	}
	return p, nil
}

// sum adds b as big-endian 16-bit words to initial, without folding.
func sum(b []byte, initial uint32) uint32 {
	s := uint64(initial)
	for len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	for s > 0xffffffff {
		s = s>>32 + s&0xffffffff
	}
	return uint32(s)
}

// fold folds a 32-bit sum into the 16-bit one's complement sum.
func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func pseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	s := sum(src.AsSlice(), 0)
	s = sum(dst.AsSlice(), s)
	return s + uint32(proto) + uint32(length)
}
