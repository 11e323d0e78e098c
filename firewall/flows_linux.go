package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// CutFlows ends the flows of the namespace that were established outside
// the tunnels and that the table Set installed now rejects, so that
// connections opened before protection engaged do not live on. Call it right
// after the Set that engages protection (and again after any Set that
// rejects more).
//
// A flow is a TCP socket in any state but LISTEN, TIME_WAIT and CLOSE, or a
// connected UDP socket, and the host's conntrack entries. It is kept when
// its remote address lies in except; when its socket carries the bypass mark
// (the provider's protected transport; a conntrack entry is kept when it
// belongs to such a socket); when its local address is on a tunnel
// interface of the Config or its socket is bound to one; when its remote
// address is the host's own; and when the table would let a packet to its
// remote address and port leave outside the tunnels. Every other flow is cut:
// its socket is destroyed through sock_diag (SOCK_DESTROY: the application
// gets ECONNABORTED, a TCP peer gets a reset) and its conntrack entry is
// deleted, so that inbound packets of the flow are no longer "established"
// for the input chain. Flows of forwarded traffic are not looked at.
//
// SOCK_DESTROY needs a kernel built with CONFIG_INET_DIAG_DESTROY (and
// CONFIG_INET_UDP_DIAG for UDP). Where it is missing, the sockets live on
// but can no longer reach anyone: every packet they send is rejected by the
// output chain (a TCP socket sees a reset on its next segment, a connected
// UDP socket an error), and inbound packets are dropped because their
// conntrack entries are gone. CutFlows then reports the count in
// CutStats.Unsupported and returns an error wrapping errors.ErrUnsupported.
//
// Without a table (no Set yet, or one that protects nothing) CutFlows cuts
// nothing.
func (m *Manager) CutFlows(except ...netip.Prefix) (CutStats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var st CutStats
	if m.closed {
		return st, ErrClosed
	}
	if m.plan == nil {
		return st, nil
	}
	p, cfg := m.plan, m.applied

	h, err := openNetlink(m.ns, unix.NETLINK_ROUTE, unix.NETLINK_NETFILTER)
	if err != nil {
		return st, err
	}
	defer h.Close()
	tunnelIndex := map[uint32]bool{}
	tunnelAddr := map[netip.Addr]bool{}
	hostAddr := map[netip.Addr]bool{}
	links, err := h.LinkList()
	if err != nil {
		return st, fmt.Errorf("firewall: listing links: %w", err)
	}
	for _, l := range links {
		isTunnel := slices.ContainsFunc(cfg.Tunnels, func(t Tunnel) bool { return t.Interface == l.Attrs().Name })
		if isTunnel {
			tunnelIndex[uint32(l.Attrs().Index)] = true
		}
		addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return st, fmt.Errorf("firewall: listing addresses of %s: %w", l.Attrs().Name, err)
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			hostAddr[ip] = true
			if isTunnel {
				tunnelAddr[ip] = true
			}
		}
	}

	// rejected reports whether the table rejects a flow of this host.
	rejected := func(local, remote netip.Addr, proto uint32, sport, dport uint16, mark uint32) bool {
		switch {
		case mark&m.opts.MarkMask == m.opts.Mark,
			!remote.IsValid(), remote.IsLoopback(), remote.IsUnspecified(),
			hostAddr[remote], tunnelAddr[local],
			slices.ContainsFunc(except, func(p netip.Prefix) bool { return p.Contains(remote) }):
			return false
		}
		v := p.eval(chainOutput, packet{mark: mark, proto: proto, sport: sport, dport: dport, src: local, dst: remote})
		return v != vAccept
	}

	var errs []error
	type tuple struct {
		proto         uint32
		local, remote netip.AddrPort
	}
	protected := map[tuple]bool{}
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		for _, proto := range []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
			socks, err := diagDump(m.ns, fam, proto)
			if err != nil {
				errs = append(errs, fmt.Errorf("listing sockets: %w", err))
				continue
			}
			for _, s := range socks {
				if proto == unix.IPPROTO_TCP && (s.state == tcpListen || s.state == tcpTimeWait || s.state == tcpClose) {
					continue
				}
				if s.remote.Port() == 0 {
					continue // unconnected UDP
				}
				if s.mark&m.opts.MarkMask == m.opts.Mark {
					protected[tuple{uint32(proto), s.local, s.remote}] = true
				}
				if tunnelIndex[s.ifindex] || !rejected(s.local.Addr(), s.remote.Addr(), uint32(proto), s.local.Port(), s.remote.Port(), s.mark) {
					st.Kept++
					continue
				}
				switch err := diagDestroy(m.ns, s); {
				case err == nil:
					st.Sockets++
				case errors.Is(err, unix.EOPNOTSUPP):
					st.Unsupported++
				case errors.Is(err, unix.ENOENT):
				default:
					errs = append(errs, fmt.Errorf("destroying socket %s->%s: %w", s.local, s.remote, err))
				}
			}
		}
	}

	filter := conntrackFilter(func(f *netlink.ConntrackFlow) bool {
		src, ok1 := netip.AddrFromSlice(f.Forward.SrcIP)
		dst, ok2 := netip.AddrFromSlice(f.Forward.DstIP)
		if !ok1 || !ok2 {
			return false
		}
		src, dst = src.Unmap(), dst.Unmap()
		proto := uint32(f.Forward.Protocol)
		local, remote := netip.AddrPortFrom(src, f.Forward.SrcPort), netip.AddrPortFrom(dst, f.Forward.DstPort)
		switch {
		case hostAddr[src]:
		case hostAddr[dst]:
			local, remote = remote, local
		default:
			return false // forwarded
		}
		if protected[tuple{proto, local, remote}] {
			return false
		}
		return rejected(local.Addr(), remote.Addr(), proto, local.Port(), remote.Port(), 0)
	})
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, fam, filter)
		st.Conntrack += int(n)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("deleting conntrack entries: %w", err))
		}
	}
	m.opts.Logger.Info("firewall cut flows", "sockets", st.Sockets, "conntrack", st.Conntrack,
		"kept", st.Kept, "unsupported", st.Unsupported)
	if st.Unsupported > 0 {
		errs = append(errs, fmt.Errorf("%d sockets: SOCK_DESTROY: %w (kernel without CONFIG_INET_DIAG_DESTROY)", st.Unsupported, errors.ErrUnsupported))
	}
	if len(errs) > 0 {
		return st, fmt.Errorf("firewall: cutting flows: %w", errors.Join(errs...))
	}
	return st, nil
}

type conntrackFilter func(*netlink.ConntrackFlow) bool

func (f conntrackFilter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool { return f(flow) }

const (
	tcpTimeWait = 6
	tcpClose    = 7
	tcpListen   = 10

	inetDiagMark = 15 // INET_DIAG_MARK, sent to requesters with CAP_NET_ADMIN
)

// diagSocket is one socket of a sock_diag dump.
type diagSocket struct {
	family, proto uint8
	state         uint8
	local, remote netip.AddrPort
	ifindex       uint32
	cookie        [2]uint32
	mark          uint32
}

// diagReq is struct inet_diag_req_v2.
type diagReq struct {
	family, proto, ext uint8
	states             uint32
	s                  *diagSocket // the socket id; nil for a dump
}

func (r *diagReq) Len() int { return 56 }

func (r *diagReq) Serialize() []byte {
	b := make([]byte, 56)
	b[0], b[1], b[2] = r.family, r.proto, r.ext
	binary.NativeEndian.PutUint32(b[4:], r.states)
	if s := r.s; s != nil {
		binary.BigEndian.PutUint16(b[8:], s.local.Port())
		binary.BigEndian.PutUint16(b[10:], s.remote.Port())
		copy(b[12:28], s.local.Addr().AsSlice())
		copy(b[28:44], s.remote.Addr().AsSlice())
		binary.NativeEndian.PutUint32(b[44:], s.ifindex)
		binary.NativeEndian.PutUint32(b[48:], s.cookie[0])
		binary.NativeEndian.PutUint32(b[52:], s.cookie[1])
	}
	return b
}

func diagSocketAt(ns netns.NsHandle) (*nl.NetlinkSocket, error) {
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_INET_DIAG)
	if err != nil {
		return nil, err
	}
	if err := s.SetReceiveTimeout(&nl.SocketTimeoutTv); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func diagExec(ns netns.NsHandle, typ, flags int, r *diagReq, f func([]byte) bool) error {
	s, err := diagSocketAt(ns)
	if err != nil {
		return err
	}
	defer s.Close()
	req := nl.NewNetlinkRequest(typ, flags)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_INET_DIAG: {Socket: s}}
	req.AddData(r)
	return req.ExecuteIter(unix.NETLINK_INET_DIAG, uint16(typ), f)
}

// diagDump lists the sockets of one family and protocol with their marks.
func diagDump(ns netns.NsHandle, family, proto uint8) ([]diagSocket, error) {
	var out []diagSocket
	var perr error
	err := diagExec(ns, nl.SOCK_DIAG_BY_FAMILY, unix.NLM_F_DUMP, &diagReq{family: family, proto: proto, states: 0xffffffff},
		func(msg []byte) bool {
			s, err := parseDiag(msg, proto)
			if err != nil {
				perr = err
				return false
			}
			out = append(out, s)
			return true
		})
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, err
	}
	return out, perr
}

// parseDiag decodes struct inet_diag_msg and its attributes.
func parseDiag(b []byte, proto uint8) (diagSocket, error) {
	if len(b) < 72 {
		return diagSocket{}, fmt.Errorf("short inet_diag_msg of %d bytes", len(b))
	}
	s := diagSocket{family: b[0], state: b[1], proto: proto}
	n := 4
	if s.family == unix.AF_INET6 {
		n = 16
	}
	la, _ := netip.AddrFromSlice(b[8 : 8+n])
	ra, _ := netip.AddrFromSlice(b[24 : 24+n])
	s.local = netip.AddrPortFrom(la.Unmap(), binary.BigEndian.Uint16(b[4:]))
	s.remote = netip.AddrPortFrom(ra.Unmap(), binary.BigEndian.Uint16(b[6:]))
	s.ifindex = binary.NativeEndian.Uint32(b[40:])
	s.cookie = [2]uint32{binary.NativeEndian.Uint32(b[44:]), binary.NativeEndian.Uint32(b[48:])}
	attrs, err := nl.ParseRouteAttr(b[72:])
	if err != nil {
		return s, err
	}
	for _, a := range attrs {
		if a.Attr.Type == inetDiagMark && len(a.Value) >= 4 {
			s.mark = binary.NativeEndian.Uint32(a.Value)
		}
	}
	return s, nil
}

// diagDestroy destroys one socket, identified by its dump entry.
func diagDestroy(ns netns.NsHandle, s diagSocket) error {
	local, remote := s.local, s.remote
	if s.family == unix.AF_INET6 {
		// Dumps of AF_INET6 sockets report IPv4 peers as v4-mapped.
		local = netip.AddrPortFrom(netip.AddrFrom16(local.Addr().As16()), local.Port())
		remote = netip.AddrPortFrom(netip.AddrFrom16(remote.Addr().As16()), remote.Port())
	}
	id := s
	id.local, id.remote = local, remote
	return diagExec(ns, nl.SOCK_DESTROY, unix.NLM_F_ACK, &diagReq{family: s.family, proto: s.proto, states: 0xffffffff, s: &id}, func([]byte) bool { return true })
}
