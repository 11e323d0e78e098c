package wireguard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/netext/netext/udpbatch"
)

// DefaultBindBatchSize is the Bind's batch size when BindOptions sets none.
// See [BindOptions.BatchSize].
const DefaultBindBatchSize = 32

// MaxBindBatchSize is the largest batch: wireguard-go's conn.IdealBatchSize.
const MaxBindBatchSize = conn.IdealBatchSize

// BindOptions configures a [Bind]. The zero value is the provider's choice.
type BindOptions struct {
	// BatchSize is the number of datagrams one receive call returns and
	// one send call takes at most, and the number of recvmmsg and sendmmsg
	// slots per socket. Zero means DefaultBindBatchSize.
	//
	// It also sizes the receive side's memory: the device keeps BatchSize
	// message buffers of 64 KiB per socket waiting for the next receive
	// call, whatever their use (wireguard-go's buffers are as large as the
	// largest UDP datagram), and the socket as many receive buffers of 64
	// KiB for UDP GRO super-datagrams. A super-datagram of more segments
	// than BatchSize is handed over in several calls without another
	// system call. 32 moved TCP as fast as 64 and 128 on two cores, at a
	// quarter of 128's memory; see the package documentation.
	BatchSize int

	// Logger receives the sockets' offloads at debug level and their
	// fallbacks as warnings. Nil discards them.
	Logger *slog.Logger

	// udp are udpbatch options for tests; nil means the defaults.
	udp *udpbatch.Options
}

// Bind is a wireguard-go conn.Bind on UDP sockets that a net.ListenConfig
// makes, such as a provider's Tunnel.BypassListenConfig, so that the
// sockets are protected: their datagrams bypass the tunnel they carry.
//
// Like wireguard-go's StdNetBind it listens on an IPv4 and an IPv6 socket
// on the same port (either may be missing when the system lacks the
// family) and moves datagrams in batches: sendmmsg and recvmmsg with UDP
// segmentation and receive offloads, through package udpbatch. It does not
// keep "sticky" source addresses: replies leave from whatever address the
// system picks, which is what a client needs.
//
// Its endpoints are [Endpoint] values. SetMark is not supported: the
// daemon marks protected sockets itself.
type Bind struct {
	lc   *net.ListenConfig
	opts BindOptions
	log  *slog.Logger
	msgs sync.Pool // *[]udpbatch.Message of BatchSize for Send
	out  *gate     // released by sends; nil without bounds
	in   *gate     // waited at and added to by receives; nil without bounds

	mu     sync.Mutex // guards the fields below
	v4, v6 *udpbatch.Conn
	stats  [2]udpbatch.Stats // of sockets closed before, v4 and v6
}

var (
	_ conn.Bind     = (*Bind)(nil)
	_ conn.Endpoint = (*Endpoint)(nil)
)

// NewBind returns a closed Bind whose sockets lc makes. wireguard-go's
// device opens it.
func NewBind(lc *net.ListenConfig, opts BindOptions) *Bind {
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBindBatchSize
	}
	opts.BatchSize = min(opts.BatchSize, MaxBindBatchSize)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bind{lc: lc, opts: opts, log: log}
	b.msgs.New = func() any {
		m := make([]udpbatch.Message, opts.BatchSize)
		return &m
	}
	return b
}

// Open implements conn.Bind: it opens the IPv4 and IPv6 sockets on port
// (both on the same port; zero picks a free one).
func (b *Bind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.v4 != nil || b.v6 != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	for tries := 0; ; tries++ {
		v4, actual, err := b.listen("udp4", port)
		if err != nil && !errors.Is(err, syscall.EAFNOSUPPORT) {
			return nil, 0, err
		}
		port6 := actual
		if v4 == nil {
			port6 = port
		}
		v6, actual6, err := b.listen("udp6", port6)
		if port == 0 && errors.Is(err, syscall.EADDRINUSE) && tries < 100 {
			closeConn(v4)
			continue // the port IPv4 got is taken for IPv6: try another
		}
		if err != nil && !errors.Is(err, syscall.EAFNOSUPPORT) {
			closeConn(v4)
			return nil, 0, err
		}
		if v4 == nil && v6 == nil {
			return nil, 0, fmt.Errorf("wireguard: opening UDP sockets: %w", syscall.EAFNOSUPPORT)
		}
		if v4 == nil {
			actual = actual6
		}
		b.v4, b.v6 = v4, v6
		var fns []conn.ReceiveFunc
		if v4 != nil {
			fns = append(fns, b.receiveFunc(v4))
		}
		if v6 != nil {
			fns = append(fns, b.receiveFunc(v6))
		}
		return fns, actual, nil
	}
}

// listen opens one socket. It returns a nil Conn and an error matching
// EAFNOSUPPORT when the system lacks the family.
func (b *Bind) listen(network string, port uint16) (*udpbatch.Conn, uint16, error) {
	pc, err := b.lc.ListenPacket(context.Background(), network, ":"+strconv.Itoa(int(port)))
	if err != nil {
		if errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL) {
			return nil, 0, fmt.Errorf("wireguard: opening a %s socket: %w", network, syscall.EAFNOSUPPORT)
		}
		return nil, 0, fmt.Errorf("wireguard: opening a %s socket: %w", network, err)
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return nil, 0, fmt.Errorf("wireguard: ListenPacket returned a %T, not a *net.UDPConn", pc)
	}
	opts := udpbatch.Options{}
	if b.opts.udp != nil {
		opts = *b.opts.udp
	}
	opts.BatchSize = b.opts.BatchSize
	opts.Logger = b.log
	c, err := udpbatch.New(uc, opts)
	if err != nil {
		uc.Close()
		return nil, 0, fmt.Errorf("wireguard: %w", err)
	}
	return c, c.LocalAddr().Port(), nil
}

func closeConn(c *udpbatch.Conn) {
	if c != nil {
		c.Close()
	}
}

// receiveFunc returns the conn.ReceiveFunc of one socket. wireguard-go
// calls it from one goroutine at a time.
func (b *Bind) receiveFunc(c *udpbatch.Conn) conn.ReceiveFunc {
	msgs := make([]udpbatch.Message, b.opts.BatchSize)
	var last *Endpoint // the endpoint of the latest sender, shared while it does not change
	return func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		b.in.wait()
		n, err := c.ReadBatch(msgs[:min(len(msgs), len(packets))])
		if err != nil {
			return 0, err
		}
		data := 0
		for i := range n {
			m := &msgs[i]
			sizes[i] = copy(packets[i], m.Buf)
			if len(m.Buf) > len(packets[i]) {
				sizes[i] = 0 // cannot happen with wireguard-go's buffers; dropped
			}
			if last == nil || last.AddrPort != m.Addr {
				last = &Endpoint{AddrPort: m.Addr}
			}
			eps[i] = last
			if isData(m.Buf) {
				data++
			}
		}
		b.in.add(data)
		return n, nil
	}
}

// Close implements conn.Bind: it closes the sockets, which makes the
// receive functions return net.ErrClosed.
func (b *Bind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for i, c := range []**udpbatch.Conn{&b.v4, &b.v6} {
		if *c == nil {
			continue
		}
		s := (*c).Stats()
		b.stats[i] = addStats(b.stats[i], s)
		if err := (*c).Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
		*c = nil
	}
	return errors.Join(errs...)
}

// SetMark implements conn.Bind. Marks are the daemon's business: zero is
// accepted, other marks are not supported.
func (b *Bind) SetMark(mark uint32) error {
	if mark == 0 {
		return nil
	}
	return fmt.Errorf("wireguard: fwmark %d: %w: the daemon marks the tunnel's sockets itself", mark, errors.ErrUnsupported)
}

// Send implements conn.Bind: it sends bufs to ep in one batch.
func (b *Bind) Send(bufs [][]byte, ep conn.Endpoint) error {
	e, ok := ep.(*Endpoint)
	if !ok {
		return conn.ErrWrongEndpointType
	}
	b.mu.Lock()
	c := b.v4
	if e.Addr().Is6() {
		c = b.v6
	}
	b.mu.Unlock()
	if c == nil {
		return syscall.EAFNOSUPPORT
	}
	defer b.out.release(len(bufs))
	mp := b.msgs.Get().(*[]udpbatch.Message)
	defer b.msgs.Put(mp)
	msgs := *mp
	for len(bufs) > 0 {
		n := min(len(bufs), len(msgs))
		for i := range n {
			msgs[i] = udpbatch.Message{Buf: bufs[i], Addr: e.AddrPort}
		}
		_, err := c.WriteBatch(msgs[:n])
		clear(msgs[:n]) // drop the references to wireguard-go's buffers
		if err != nil {
			return err
		}
		bufs = bufs[n:]
	}
	return nil
}

// isData reports whether a datagram is a WireGuard data message that
// carries a packet (type 4, longer than a keepalive's 32 bytes), which
// wireguard-go writes to the tunnel device if it is genuine.
func isData(b []byte) bool {
	return len(b) > 32 && b[0] == 4 && b[1] == 0 && b[2] == 0 && b[3] == 0
}

// ParseEndpoint implements conn.Bind: s is "IP:port", with an IPv6
// address in brackets.
func (b *Bind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	if ap.Addr().Zone() != "" {
		return nil, fmt.Errorf("wireguard: endpoint %s: zones are not supported", s)
	}
	return &Endpoint{AddrPort: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}

// BatchSize implements conn.Bind.
func (b *Bind) BatchSize() int { return b.opts.BatchSize }

// Port returns the local port of the open sockets, or zero.
func (b *Bind) Port() uint16 {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range []*udpbatch.Conn{b.v4, b.v6} {
		if c != nil {
			return c.LocalAddr().Port()
		}
	}
	return 0
}

// TransportStats is what a Bind's sockets did, since the Bind was made.
type TransportStats struct {
	GSO  bool           `json:"gso"` // UDP segmentation offload in use (IPv4 socket, else IPv6)
	GRO  bool           `json:"gro"` // UDP receive coalescing in use
	IPv4 udpbatch.Stats `json:"ipv4"`
	IPv6 udpbatch.Stats `json:"ipv6"`

	// Outbound and Inbound are the bounds on packets in flight inside
	// wireguard-go, to and from the peers.
	Outbound GateStats `json:"outbound"`
	Inbound  GateStats `json:"inbound"`
}

// Stats returns the sockets' counters, those of closed sockets included.
func (b *Bind) Stats() TransportStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := TransportStats{IPv4: b.stats[0], IPv6: b.stats[1]}
	if b.v6 != nil {
		s.GSO, s.GRO = b.v6.Offloads()
		s.IPv6 = addStats(s.IPv6, b.v6.Stats())
	}
	if b.v4 != nil {
		s.GSO, s.GRO = b.v4.Offloads()
		s.IPv4 = addStats(s.IPv4, b.v4.Stats())
	}
	return s
}

func addStats(a, b udpbatch.Stats) udpbatch.Stats {
	return udpbatch.Stats{
		Sent:        a.Sent + b.Sent,
		SentGSO:     a.SentGSO + b.SentGSO,
		SendErrors:  a.SendErrors + b.SendErrors,
		Received:    a.Received + b.Received,
		ReceivedGRO: a.ReceivedGRO + b.ReceivedGRO,
		Truncated:   a.Truncated + b.Truncated,
		Syscalls:    a.Syscalls + b.Syscalls,
	}
}

// Endpoint is a peer's address, the conn.Endpoint of a [Bind]. It keeps no
// source address. Endpoints are immutable and may be shared.
type Endpoint struct {
	netip.AddrPort
}

// ClearSrc implements conn.Endpoint; there is no source to clear.
func (*Endpoint) ClearSrc() {}

// SrcToString implements conn.Endpoint: always "".
func (*Endpoint) SrcToString() string { return "" }

// DstToString implements conn.Endpoint: "IP:port".
func (e *Endpoint) DstToString() string { return e.AddrPort.String() }

// DstToBytes implements conn.Endpoint: the address and port, for the
// cookie MACs.
func (e *Endpoint) DstToBytes() []byte {
	b, _ := e.AddrPort.MarshalBinary()
	return b
}

// DstIP implements conn.Endpoint.
func (e *Endpoint) DstIP() netip.Addr { return e.Addr() }

// SrcIP implements conn.Endpoint: always the zero Addr.
func (*Endpoint) SrcIP() netip.Addr { return netip.Addr{} }
