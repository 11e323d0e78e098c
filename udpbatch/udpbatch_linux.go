package udpbatch

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// sockaddrSize holds a sockaddr_in6, which also fits a sockaddr_in.
	sockaddrSize = unix.SizeofSockaddrInet6
	// groBufferSize holds the largest coalesced datagram the kernel
	// delivers with UDP_GRO.
	groBufferSize = 1 << 16
	// groSlotDivisor: with GRO on, a batch of BatchSize datagrams is read
	// into BatchSize/groSlotDivisor buffers of groBufferSize (at least
	// minGROSlots), each holding up to 64 coalesced datagrams.
	groSlotDivisor = 8
	minGROSlots    = 2
)

var (
	segmentControlSize = unix.CmsgSpace(2) // UDP_SEGMENT carries a uint16
	groControlSize     = unix.CmsgSpace(4) // UDP_GRO delivers an int
)

type sysConn struct {
	rc    syscall.RawConn
	inet6 bool // the socket is AF_INET6 (it may still reach IPv4 peers)
	gso   atomic.Bool
	gro   bool

	rmu     sync.Mutex // serializes reads; guards the fields below
	rhs     []unix.Mmsghdr
	riov    []unix.Iovec
	rbufs   [][]byte
	rnames  [][sockaddrSize]byte
	rctl    []byte    // groControlSize bytes per slot
	segs    []Message // datagrams received and not yet returned
	segHead int
	rn      int
	rerr    syscall.Errno
	recvFn  func(fd uintptr) bool

	wmu    sync.Mutex // serializes writes; guards the fields below
	whs    []unix.Mmsghdr
	wiov   []unix.Iovec
	wnames [][sockaddrSize]byte
	wctl   []byte // segmentControlSize bytes per slot
	wcount []int  // datagrams in each slot
	wfrom  int    // first slot to send
	wto    int    // slots to send end here
	wn     int
	werr   syscall.Errno
	sendFn func(fd uintptr) bool
}

func (c *Conn) init() error {
	s := &c.sys
	rc, err := c.uc.SyscallConn()
	if err != nil {
		return err
	}
	s.rc = rc
	var sa unix.Sockaddr
	var gsoErr, groErr error
	cerr := rc.Control(func(fd uintptr) {
		sa, err = unix.Getsockname(int(fd))
		if err != nil {
			return
		}
		if n := c.opts.SocketBufferSize; n > 0 {
			// Best effort: the FORCE variants need CAP_NET_ADMIN.
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, n)
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, n)
		}
		if !c.opts.DisableGSO {
			_, gsoErr = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
			s.gso.Store(gsoErr == nil)
		}
		if c.opts.DisableGRO {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 0)
		} else {
			groErr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1)
			if groErr == nil {
				// Kernels before 5.12 cannot read the option back;
				// trust the set there.
				v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO)
				s.gro = err != nil || v == 1
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	if err != nil {
		return fmt.Errorf("getsockname: %w", err)
	}
	switch sa.(type) {
	case *unix.SockaddrInet4:
	case *unix.SockaddrInet6:
		s.inet6 = true
	default:
		return fmt.Errorf("socket family %T is not IPv4 or IPv6", sa)
	}
	if gsoErr != nil {
		c.opts.Logger.Debug("udpbatch: no UDP GSO", "err", gsoErr)
	}
	if groErr != nil {
		c.opts.Logger.Debug("udpbatch: no UDP GRO", "err", groErr)
	}

	// Receive side: one contiguous slab cut into slots.
	slots, size := c.opts.BatchSize, c.opts.MaxDatagramSize
	segsPerSlot := 1
	if s.gro {
		slots, size, segsPerSlot = max(minGROSlots, c.opts.BatchSize/groSlotDivisor), groBufferSize, maxGSOSegments
	}
	slab := make([]byte, slots*size)
	s.rhs = make([]unix.Mmsghdr, slots)
	s.riov = make([]unix.Iovec, slots)
	s.rbufs = make([][]byte, slots)
	s.rnames = make([][sockaddrSize]byte, slots)
	s.rctl = make([]byte, slots*groControlSize)
	s.segs = make([]Message, 0, slots*segsPerSlot)
	for i := range slots {
		s.rbufs[i] = slab[i*size : (i+1)*size : (i+1)*size]
		s.riov[i].Base = &s.rbufs[i][0]
		s.riov[i].SetLen(size)
		h := &s.rhs[i].Hdr
		h.Name = &s.rnames[i][0]
		h.Iov = &s.riov[i]
		h.SetIovlen(1)
		h.Control = &s.rctl[i*groControlSize]
	}
	s.recvFn = c.recvmmsg

	// Send side: up to BatchSize slots, each a GSO group of up to
	// maxGSOSegments datagrams.
	n := c.opts.BatchSize
	s.whs = make([]unix.Mmsghdr, n)
	s.wiov = make([]unix.Iovec, n*maxGSOSegments)
	s.wnames = make([][sockaddrSize]byte, n)
	s.wctl = make([]byte, n*segmentControlSize)
	s.wcount = make([]int, n)
	s.sendFn = c.sendmmsg
	return nil
}

func (c *Conn) offloads() (gso, gro bool) { return c.sys.gso.Load(), c.sys.gro }

// recvmmsg is the RawConn.Read callback. It is a method value made once in
// init, so calling it allocates nothing.
func (c *Conn) recvmmsg(fd uintptr) bool {
	s := &c.sys
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.rhs[0])), uintptr(len(s.rhs)), 0, 0, 0)
		switch errno {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait until readable
		case 0:
			s.rn = int(n)
		}
		s.rerr = errno
		return true
	}
}

func (c *Conn) readBatch(msgs []Message) (int, error) {
	s := &c.sys
	s.rmu.Lock()
	defer s.rmu.Unlock()
	for s.segHead == len(s.segs) {
		if err := c.receive(); err != nil {
			return 0, err
		}
	}
	// The segments point into the Conn's own buffers: nothing to clear.
	n := copy(msgs, s.segs[s.segHead:])
	s.segHead += n
	c.stats.received.Add(uint64(n))
	return n, nil
}

// receive reads one batch from the kernel into s.segs, splitting coalesced
// datagrams. It may return with no datagrams (all of them truncated).
func (c *Conn) receive() error {
	s := &c.sys
	for i := range s.rhs {
		// Reset what the kernel wrote back; the pointers stay as init
		// set them.
		h := &s.rhs[i].Hdr
		h.Namelen = sockaddrSize
		h.SetControllen(groControlSize)
		h.Flags = 0
		s.rhs[i].Len = 0
	}
	s.rn, s.rerr = 0, 0
	if err := s.rc.Read(s.recvFn); err != nil {
		return err
	}
	c.stats.syscalls.Add(1)
	if s.rerr != 0 {
		return os.NewSyscallError("recvmmsg", s.rerr)
	}
	s.segs, s.segHead = s.segs[:0], 0
	for i := range s.rn {
		m := &s.rhs[i]
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			c.stats.truncated.Add(1)
			continue
		}
		addr := parseSockaddr(s.rnames[i][:m.Hdr.Namelen])
		data := s.rbufs[i][:m.Len]
		seg := 0
		if s.gro {
			seg = groSize(s.rctl[i*groControlSize : i*groControlSize+int(m.Hdr.Controllen)])
		}
		if seg <= 0 || seg >= len(data) {
			s.segs = append(s.segs, Message{Buf: data, Addr: addr})
			continue
		}
		c.stats.receivedGRO.Add(1)
		for len(data) > 0 {
			k := min(seg, len(data))
			s.segs = append(s.segs, Message{Buf: data[:k:k], Addr: addr})
			data = data[k:]
		}
	}
	return nil
}

// groSize returns the segment size from a UDP_GRO control message, or 0.
func groSize(control []byte) int {
	for len(control) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(control)
		if err != nil {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO {
			switch {
			case len(data) >= 4:
				return int(binary.NativeEndian.Uint32(data))
			case len(data) >= 2:
				return int(binary.NativeEndian.Uint16(data))
			}
			return 0
		}
		control = rest
	}
	return 0
}

// parseSockaddr reads a sockaddr_in or sockaddr_in6. IPv4-mapped IPv6
// addresses come back as IPv4.
func parseSockaddr(b []byte) netip.AddrPort {
	if len(b) < 4 {
		return netip.AddrPort{}
	}
	port := binary.BigEndian.Uint16(b[2:4])
	switch binary.NativeEndian.Uint16(b[0:2]) {
	case unix.AF_INET:
		if len(b) >= 8 {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
		}
	case unix.AF_INET6:
		if len(b) >= 24 {
			return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])).Unmap(), port)
		}
	}
	return netip.AddrPort{}
}

// putSockaddr writes ap into b in the socket's family and returns its length.
func (s *sysConn) putSockaddr(b *[sockaddrSize]byte, ap netip.AddrPort) (int, error) {
	*b = [sockaddrSize]byte{}
	a := ap.Addr().Unmap()
	binary.BigEndian.PutUint16(b[2:4], ap.Port())
	if s.inet6 {
		binary.NativeEndian.PutUint16(b[0:2], unix.AF_INET6)
		a16 := a.As16() // IPv4 becomes IPv4-mapped
		copy(b[8:24], a16[:])
		return unix.SizeofSockaddrInet6, nil
	}
	if !a.Is4() {
		return 0, unix.EAFNOSUPPORT
	}
	binary.NativeEndian.PutUint16(b[0:2], unix.AF_INET)
	a4 := a.As4()
	copy(b[4:8], a4[:])
	return unix.SizeofSockaddrInet4, nil
}

// sendmmsg is the RawConn.Write callback, made once in init.
func (c *Conn) sendmmsg(fd uintptr) bool {
	s := &c.sys
	for {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.whs[s.wfrom])), uintptr(s.wto-s.wfrom), 0, 0, 0)
		switch errno {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait until writable
		case 0:
			s.wn = int(n)
		}
		s.werr = errno
		return true
	}
}

func (c *Conn) writeBatch(msgs []Message) (int, error) {
	s := &c.sys
	s.wmu.Lock()
	defer s.wmu.Unlock()
	sent := 0
	var firstErr error
	for len(msgs) > 0 {
		slots, used := c.pack(msgs)
		// The slots [0, slots) carry msgs[:used]. Send them, skipping
		// a slot the kernel refuses.
		done := 0 // datagrams of msgs handled so far
		s.wfrom = 0
		retry := false
		for s.wfrom < slots {
			s.wto, s.wn, s.werr = slots, 0, 0
			if err := s.rc.Write(s.sendFn); err != nil {
				return sent, err
			}
			c.stats.syscalls.Add(1)
			accepted, groups := 0, 0 // in the slots the kernel took
			for _, k := range s.wcount[s.wfrom : s.wfrom+s.wn] {
				accepted += k
				if k > 1 {
					groups++
				}
			}
			s.wfrom += s.wn
			sent += accepted
			done += accepted
			c.stats.sent.Add(uint64(accepted))
			c.stats.sentGSO.Add(uint64(groups))
			if s.werr == 0 {
				continue
			}
			if s.wcount[s.wfrom] > 1 && gsoFailure(s.werr) && s.gso.Swap(false) {
				c.opts.Logger.Warn("udpbatch: UDP GSO failed, sending without it from now on", "local", c.local, "err", s.werr)
				retry = true
				break
			}
			if firstErr == nil {
				firstErr = os.NewSyscallError("sendmmsg", s.werr)
			}
			c.stats.sendErrors.Add(uint64(s.wcount[s.wfrom]))
			done += s.wcount[s.wfrom]
			s.wfrom++
		}
		clear(s.wiov[:used]) // keep no references to the callers' buffers
		if retry {
			msgs = msgs[done:]
			continue
		}
		msgs = msgs[used:]
	}
	return sent, firstErr
}

// gsoFailure reports whether a GSO send that failed with errno would
// succeed as plain datagrams: EIO when the outgoing device cannot checksum
// UDP (which UDP_SEGMENT needs), EINVAL and EMSGSIZE when a segment does
// not fit the route's MTU, which the kernel would otherwise fragment.
func gsoFailure(errno unix.Errno) bool {
	return errno == unix.EIO || errno == unix.EINVAL || errno == unix.EMSGSIZE
}

// pack fills the send slots from msgs, grouping datagrams for GSO, and
// returns the number of slots filled and of messages they carry; msgs[i]
// goes in s.wiov[i]. A message the socket cannot address gets a slot of its
// own without a name, which the kernel then refuses; pack does not judge.
func (c *Conn) pack(msgs []Message) (slots, used int) {
	s := &c.sys
	gso := s.gso.Load()
	for used < len(msgs) && slots < len(s.whs) {
		m := msgs[used]
		h := &s.whs[slots].Hdr
		*h = unix.Msghdr{}
		s.whs[slots].Len = 0
		if m.Addr.IsValid() {
			if n, err := s.putSockaddr(&s.wnames[slots], m.Addr); err == nil {
				h.Name = &s.wnames[slots][0]
				h.Namelen = uint32(n)
			}
		}
		first := used
		setIov(&s.wiov[used], m.Buf)
		used++
		count, seg, total := 1, len(m.Buf), len(m.Buf)
		if gso && seg > 0 {
			limit := maxUDPPayload
			if !m.Addr.IsValid() || m.Addr.Addr().Unmap().Is4() {
				limit = maxUDP4Payload
			}
			for used < len(msgs) && count < maxGSOSegments {
				next := msgs[used]
				n := len(next.Buf)
				if next.Addr != m.Addr || n == 0 || n > seg || total+n > limit {
					break
				}
				setIov(&s.wiov[used], next.Buf)
				used++
				count++
				total += n
				if n < seg {
					break // a shorter datagram ends a group
				}
			}
		}
		h.Iov = &s.wiov[first]
		h.SetIovlen(count)
		if count > 1 {
			ctl := s.wctl[slots*segmentControlSize : (slots+1)*segmentControlSize]
			putSegmentSize(ctl, uint16(seg))
			h.Control = &ctl[0]
			h.SetControllen(segmentControlSize)
		}
		s.wcount[slots] = count
		slots++
	}
	return slots, used
}

func setIov(v *unix.Iovec, b []byte) {
	if len(b) == 0 {
		*v = unix.Iovec{}
		return
	}
	v.Base = &b[0]
	v.SetLen(len(b))
}

// putSegmentSize writes a UDP_SEGMENT control message into ctl, which is
// segmentControlSize bytes long.
func putSegmentSize(ctl []byte, size uint16) {
	clear(ctl)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(ctl[unix.CmsgLen(0):], size)
}
