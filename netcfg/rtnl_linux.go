package netcfg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strconv"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// rtnl is a small rtnetlink client for routes and rules. Route changes are
// sent in batches: many requests per sendmsg, and the answers read
// afterwards, so that 100,000 routes take a few hundred syscalls rather
// than two per route.
type rtnl struct {
	fd   int
	seq  uint32
	w    builder
	rbuf []byte
}

const (
	// maxBatch bounds the requests in flight, so that their answers fit
	// the socket's receive buffer even when all of them fail.
	maxBatch      = 1024
	maxBatchBytes = 128 << 10
	rcvBufSize    = 8 << 20
	recvTimeout   = 10 // seconds; a kernel that stops answering is an error, not a hang

	nlmFAckTLVs     = 0x200 // NLM_F_ACK_TLVS
	nlmFCapped      = 0x100 // NLM_F_CAPPED
	nlmsgerrAttrMsg = 1     // NLMSGERR_ATTR_MSG
)

var native = binary.NativeEndian

// socketIn opens a socket in network namespace ns (the current one when ns
// is not open).
func socketIn(ns netns.NsHandle, domain, typ, proto int) (int, error) {
	if !ns.IsOpen() {
		return unix.Socket(domain, typ, proto)
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return -1, err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return -1, err
	}
	fd, serr := unix.Socket(domain, typ, proto)
	if err := netns.Set(orig); err != nil {
		// The thread stays locked and in the wrong namespace; the
		// runtime discards it when this goroutine exits.
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("returning to the original network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return fd, serr
}

func openRTNL(ns netns.NsHandle) (*rtnl, error) {
	fd, err := socketIn(ns, unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	c := &rtnl{fd: fd, rbuf: make([]byte, 1<<20)}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	// Optional features; older kernels lack some, which only costs
	// detail in errors or dump filtering done here instead.
	unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBufSize); err != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBufSize)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 2*maxBatchBytes)
	tv := unix.Timeval{Sec: recvTimeout}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink receive timeout: %w", err)
	}
	return c, nil
}

func (c *rtnl) Close() error { return unix.Close(c.fd) }

// builder appends netlink messages to a buffer.
type builder struct {
	b     []byte
	start int
}

func (w *builder) begin(typ, flags uint16, seq uint32) {
	w.start = len(w.b)
	var h [unix.SizeofNlMsghdr]byte
	native.PutUint16(h[4:], typ)
	native.PutUint16(h[6:], flags)
	native.PutUint32(h[8:], seq)
	w.b = append(w.b, h[:]...)
}

func (w *builder) raw(p []byte) { w.b = append(w.b, p...) }

func (w *builder) attr(typ uint16, data []byte) {
	var h [4]byte
	native.PutUint16(h[0:], uint16(4+len(data)))
	native.PutUint16(h[2:], typ)
	w.b = append(w.b, h[:]...)
	w.b = append(w.b, data...)
	for len(w.b)%4 != 0 {
		w.b = append(w.b, 0)
	}
}

func (w *builder) attrU32(typ uint16, v uint32) {
	var d [4]byte
	native.PutUint32(d[:], v)
	w.attr(typ, d[:])
}

func (w *builder) end() {
	native.PutUint32(w.b[w.start:], uint32(len(w.b)-w.start))
}

// rtmsg is struct rtmsg and, with the same layout, struct fib_rule_hdr
// (whose Type byte is the action).
type rtmsg struct {
	Family, DstLen, SrcLen, Tos, Table, Protocol, Scope, Type uint8
	Flags                                                     uint32
}

func (m rtmsg) bytes() []byte {
	var b [unix.SizeofRtMsg]byte
	b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7] = m.Family, m.DstLen, m.SrcLen, m.Tos, m.Table, m.Protocol, m.Scope, m.Type
	native.PutUint32(b[8:], m.Flags)
	return b[:]
}

func parseRtmsg(b []byte) (rtmsg, bool) {
	if len(b) < unix.SizeofRtMsg {
		return rtmsg{}, false
	}
	return rtmsg{b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], native.Uint32(b[8:])}, true
}

func afOf(family int) uint8 {
	if family == 6 {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

func table8(t int) uint8 {
	if t < 256 {
		return uint8(t)
	}
	return unix.RT_TABLE_UNSPEC
}

// encodeRoute appends an RTM_NEWROUTE (replace) or RTM_DELROUTE for r.
// Deletion matches destination, table and protocol only.
func encodeRoute(w *builder, r kRoute, del bool, seq uint32) {
	m := rtmsg{
		Family:   afOf(familyOf(r.Dst)),
		DstLen:   uint8(r.Dst.Bits()),
		Table:    table8(r.Table),
		Protocol: r.Protocol,
		Type:     r.Type,
	}
	if del {
		w.begin(unix.RTM_DELROUTE, unix.NLM_F_REQUEST|unix.NLM_F_ACK, seq)
		m.Scope, m.Type = unix.RT_SCOPE_NOWHERE, unix.RTN_UNSPEC
	} else {
		w.begin(unix.RTM_NEWROUTE, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_REPLACE, seq)
		m.Scope = unix.RT_SCOPE_UNIVERSE
		// IPv4 throw routes get scope link too: the kernel resolves a
		// gateway of a new route with a lookup through the rules that
		// only considers link-scope routes, and a throw of universe
		// scope would be skipped there, resolving a LAN gateway to our
		// link's default route instead of the LAN.
		if (r.Type == rtnUnicast && !r.Gateway.IsValid() || r.Type == rtnThrow) && r.Dst.Addr().Is4() {
			m.Scope = unix.RT_SCOPE_LINK
		}
		if r.Gateway.IsValid() {
			m.Flags = unix.RTNH_F_ONLINK
		}
	}
	w.raw(m.bytes())
	w.attrU32(unix.RTA_TABLE, uint32(r.Table))
	if r.Dst.Bits() > 0 {
		w.attr(unix.RTA_DST, r.Dst.Addr().AsSlice())
	}
	if !del {
		if r.LinkIndex != 0 {
			w.attrU32(unix.RTA_OIF, uint32(r.LinkIndex))
		}
		if r.Gateway.IsValid() {
			w.attr(unix.RTA_GATEWAY, r.Gateway.AsSlice())
		}
		if r.Metric != 0 {
			w.attrU32(unix.RTA_PRIORITY, uint32(r.Metric))
		}
	}
	w.end()
}

// encodeRule appends an RTM_NEWRULE or RTM_DELRULE for r.
func encodeRule(w *builder, r kRule, del bool, seq uint32) {
	if del {
		w.begin(unix.RTM_DELRULE, unix.NLM_F_REQUEST|unix.NLM_F_ACK, seq)
	} else {
		w.begin(unix.RTM_NEWRULE, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL, seq)
	}
	m := rtmsg{Family: afOf(r.Family), Table: table8(r.Table), Type: r.Action}
	w.raw(m.bytes())
	w.attrU32(unix.FRA_PRIORITY, uint32(r.Priority))
	if r.Action == frActToTable {
		w.attrU32(unix.FRA_TABLE, uint32(r.Table))
	}
	if r.hasMark() {
		w.attrU32(unix.FRA_FWMARK, r.Mark)
		w.attrU32(unix.FRA_FWMASK, r.Mask)
	}
	w.attr(unix.FRA_PROTOCOL, []byte{r.Protocol})
	w.end()
}

// exec sends n requests, built by enc with the sequence number it is given,
// in batches, and returns one error per request (nil if all succeeded), or
// an error of the exchange itself.
//
// Only the last request of a batch asks for an ack: the kernel handles a
// batch in order and reports every failed request anyway, so the last ack
// marks the end of the batch and saves a receive per request.
func (c *rtnl) exec(n int, enc func(w *builder, i int, seq uint32)) ([]error, error) {
	var per []error
	for start := 0; start < n; {
		c.w.b = c.w.b[:0]
		base := c.seq + 1
		end := start
		last := 0 // offset of the last message
		for end < n && end-start < maxBatch && len(c.w.b) < maxBatchBytes {
			last = len(c.w.b)
			enc(&c.w, end, base+uint32(end-start))
			flags := native.Uint16(c.w.b[last+6:])
			native.PutUint16(c.w.b[last+6:], flags&^unix.NLM_F_ACK)
			end++
		}
		native.PutUint16(c.w.b[last+6:], native.Uint16(c.w.b[last+6:])|unix.NLM_F_ACK)
		c.seq = base + uint32(end-start-1)
		if err := unix.Sendto(c.fd, c.w.b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return per, fmt.Errorf("netlink send: %w", err)
		}
		for done := false; !done; {
			nr, err := c.recv()
			if err != nil {
				return per, err
			}
			err = eachMsg(c.rbuf[:nr], func(typ, flags uint16, seq uint32, body []byte) error {
				if typ != unix.NLMSG_ERROR || seq < base || seq > c.seq {
					return nil // not ours, or stale
				}
				if seq == c.seq {
					done = true
				}
				if e := parseNlErr(body, flags); e != nil {
					if per == nil {
						per = make([]error, n)
					}
					per[start+int(seq-base)] = e
				}
				return nil
			})
			if err != nil {
				return per, err
			}
		}
		start = end
	}
	return per, nil
}

// do sends one request and waits for its ack.
func (c *rtnl) do(enc func(w *builder, seq uint32)) error {
	per, err := c.exec(1, func(w *builder, _ int, seq uint32) { enc(w, seq) })
	if err != nil {
		return err
	}
	if per != nil {
		return per[0]
	}
	return nil
}

func (c *rtnl) recv() (int, error) {
	for {
		nr, _, err := unix.Recvfrom(c.fd, c.rbuf, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, fmt.Errorf("netlink receive: no answer in %ds", recvTimeout)
		case err != nil:
			return 0, fmt.Errorf("netlink receive: %w", err)
		}
		return nr, nil
	}
}

// eachMsg calls f for each netlink message in b.
func eachMsg(b []byte, f func(typ, flags uint16, seq uint32, body []byte) error) error {
	for len(b) >= unix.SizeofNlMsghdr {
		l := int(native.Uint32(b))
		if l < unix.SizeofNlMsghdr || l > len(b) {
			return errors.New("netlink: malformed message")
		}
		if err := f(native.Uint16(b[4:]), native.Uint16(b[6:]), native.Uint32(b[8:]), b[unix.SizeofNlMsghdr:l]); err != nil {
			return err
		}
		al := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if al > len(b) {
			break
		}
		b = b[al:]
	}
	return nil
}

// parseNlErr returns the error of an NLMSG_ERROR body, nil for an ack,
// with the kernel's extended ack message when there is one.
func parseNlErr(body []byte, flags uint16) error {
	if len(body) < 4 {
		return errors.New("netlink: short error message")
	}
	code := int32(native.Uint32(body))
	if code == 0 {
		return nil
	}
	errno := unix.Errno(-code)
	if flags&nlmFAckTLVs == 0 || len(body) < 4+unix.SizeofNlMsghdr {
		return errno
	}
	off := 4 + unix.SizeofNlMsghdr
	if flags&nlmFCapped == 0 {
		off = 4 + int(native.Uint32(body[4:]))
	}
	if off > len(body) {
		return errno
	}
	msg := ""
	eachAttr(body[off:], func(typ uint16, data []byte) {
		if typ == nlmsgerrAttrMsg {
			msg = strings.TrimRight(string(data), "\x00")
		}
	})
	if msg == "" {
		return errno
	}
	return fmt.Errorf("%w (%s)", errno, msg)
}

func eachAttr(b []byte, f func(typ uint16, data []byte)) {
	for len(b) >= 4 {
		l := int(native.Uint16(b))
		if l < 4 || l > len(b) {
			return
		}
		f(native.Uint16(b[2:])&^unix.NLA_F_NESTED, b[4:l])
		al := (l + 3) &^ 3
		if al > len(b) {
			return
		}
		b = b[al:]
	}
}

// dump sends a dump request and calls f for each answer of type typ. An
// interrupted dump (the table changed meanwhile) is retried.
func (c *rtnl) dump(req func(w *builder, seq uint32), typ uint16, f func(body []byte) error) error {
	const attempts = 5
	for range attempts {
		c.seq++
		seq := c.seq
		c.w.b = c.w.b[:0]
		req(&c.w, seq)
		if err := unix.Sendto(c.fd, c.w.b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return fmt.Errorf("netlink send: %w", err)
		}
		done, intr := false, false
		var ferr error
		for !done {
			nr, err := c.recv()
			if err != nil {
				return err
			}
			err = eachMsg(c.rbuf[:nr], func(t, flags uint16, s uint32, body []byte) error {
				if s != seq {
					return nil
				}
				if flags&unix.NLM_F_DUMP_INTR != 0 {
					intr = true
				}
				switch t {
				case unix.NLMSG_DONE:
					done = true
				case unix.NLMSG_ERROR:
					done = true
					return parseNlErr(body, flags)
				case typ:
					if ferr == nil && !intr {
						ferr = f(body)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if ferr != nil {
			return ferr
		}
		if !intr {
			return nil
		}
	}
	return fmt.Errorf("netlink dump interrupted %d times", attempts)
}

// routes dumps the routes of one family and table.
func (c *rtnl) routes(family, table int) ([]kRoute, error) {
	var out []kRoute
	err := c.dump(func(w *builder, seq uint32) {
		w.begin(unix.RTM_GETROUTE, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq)
		w.raw(rtmsg{Family: afOf(family)}.bytes())
		w.attrU32(unix.RTA_TABLE, uint32(table))
		w.end()
	}, unix.RTM_NEWROUTE, func(body []byte) error {
		r, ok := parseRoute(body)
		if ok && r.Table == table {
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

func parseRoute(body []byte) (kRoute, bool) {
	m, ok := parseRtmsg(body)
	if !ok || m.Flags&unix.RTM_F_CLONED != 0 || (m.Family != unix.AF_INET && m.Family != unix.AF_INET6) {
		return kRoute{}, false
	}
	r := kRoute{Table: int(m.Table), Type: m.Type, Protocol: m.Protocol}
	var dst netip.Addr
	eachAttr(body[unix.SizeofRtMsg:], func(typ uint16, data []byte) {
		switch typ {
		case unix.RTA_TABLE:
			if len(data) >= 4 {
				r.Table = int(native.Uint32(data))
			}
		case unix.RTA_DST:
			dst, _ = netip.AddrFromSlice(data)
		case unix.RTA_OIF:
			if len(data) >= 4 {
				r.LinkIndex = int(native.Uint32(data))
			}
		case unix.RTA_GATEWAY:
			r.Gateway, _ = netip.AddrFromSlice(data)
		case unix.RTA_PRIORITY:
			if len(data) >= 4 {
				r.Metric = int(native.Uint32(data))
			}
		case unix.RTA_MULTIPATH:
			// struct rtnexthop: len u16, flags u8, hops u8, ifindex i32;
			// the first next hop stands for the route.
			if len(data) >= 8 && r.LinkIndex == 0 {
				r.LinkIndex = int(native.Uint32(data[4:]))
				eachAttr(data[8:min(len(data), int(native.Uint16(data)))], func(t uint16, d []byte) {
					if t == unix.RTA_GATEWAY && !r.Gateway.IsValid() {
						r.Gateway, _ = netip.AddrFromSlice(d)
					}
				})
			}
		}
	})
	if !dst.IsValid() {
		if m.Family == unix.AF_INET {
			dst = netip.IPv4Unspecified()
		} else {
			dst = netip.IPv6Unspecified()
		}
	}
	p, err := dst.Prefix(int(m.DstLen))
	if err != nil {
		return kRoute{}, false
	}
	r.Dst = p
	return r, true
}

// rules dumps the policy rules of one family.
func (c *rtnl) rules(family int) ([]kRule, error) {
	var out []kRule
	err := c.dump(func(w *builder, seq uint32) {
		w.begin(unix.RTM_GETRULE, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq)
		w.raw(rtmsg{Family: afOf(family)}.bytes())
		w.end()
	}, unix.RTM_NEWRULE, func(body []byte) error {
		if r, ok := parseRule(body, family); ok {
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

func parseRule(body []byte, family int) (kRule, bool) {
	m, ok := parseRtmsg(body)
	if !ok {
		return kRule{}, false
	}
	r := kRule{Family: family, Action: m.Type, Table: int(m.Table)}
	var other []string
	if m.SrcLen != 0 {
		other = append(other, "from /"+strconv.Itoa(int(m.SrcLen)))
	}
	if m.DstLen != 0 {
		other = append(other, "to /"+strconv.Itoa(int(m.DstLen)))
	}
	if m.Tos != 0 {
		other = append(other, "tos "+strconv.Itoa(int(m.Tos)))
	}
	if m.Flags&unix.FIB_RULE_INVERT != 0 {
		other = append(other, "not")
	}
	hasMark := false
	eachAttr(body[unix.SizeofRtMsg:], func(typ uint16, data []byte) {
		u32 := func() uint32 {
			if len(data) >= 4 {
				return native.Uint32(data)
			}
			return 0
		}
		switch typ {
		case unix.FRA_PRIORITY:
			r.Priority = int(u32())
		case unix.FRA_TABLE:
			r.Table = int(u32())
		case unix.FRA_FWMARK:
			r.Mark, hasMark = u32(), true
		case unix.FRA_FWMASK:
			r.Mask = u32()
		case unix.FRA_PROTOCOL:
			if len(data) > 0 {
				r.Protocol = data[0]
			}
		case unix.FRA_SRC, unix.FRA_DST:
		case unix.FRA_IIFNAME:
			other = append(other, "iif "+strings.TrimRight(string(data), "\x00"))
		case unix.FRA_OIFNAME:
			other = append(other, "oif "+strings.TrimRight(string(data), "\x00"))
		case unix.FRA_SUPPRESS_PREFIXLEN:
			if v := u32(); v != 0xffffffff {
				other = append(other, "suppress_prefixlength "+strconv.Itoa(int(v)))
			}
		case unix.FRA_SUPPRESS_IFGROUP:
			if v := u32(); v != 0xffffffff {
				other = append(other, "suppress_ifgroup "+strconv.Itoa(int(v)))
			}
		case unix.FRA_GOTO:
			other = append(other, "goto "+strconv.Itoa(int(u32())))
		default:
			other = append(other, "attr"+strconv.Itoa(int(typ)))
		}
	})
	if hasMark && r.Mask == 0 && r.Mark != 0 {
		r.Mask = 0xffffffff
	}
	if r.Action != frActToTable {
		r.Table = 0
	}
	r.Other = strings.Join(other, " ")
	return r, true
}
