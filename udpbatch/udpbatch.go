package udpbatch

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
)

// Defaults for zero Options fields.
const (
	// DefaultBatchSize is the number of system call slots per batch.
	DefaultBatchSize = 64
	// DefaultMaxDatagramSize is the largest datagram received intact by
	// default: room for a 9000-byte jumbo frame. Larger ones are dropped
	// and counted in Stats.Truncated.
	DefaultMaxDatagramSize = 9216
	// DefaultSocketBufferSize is the send and receive buffer size asked of
	// the kernel, as wireguard-go does. Without CAP_NET_ADMIN the kernel
	// caps it at net.core.rmem_max and wmem_max.
	DefaultSocketBufferSize = 7 << 20
)

// maxGSOSegments is the most datagrams one UDP_SEGMENT send may carry
// (UDP_MAX_SEGMENTS in older kernels; newer ones allow more).
const maxGSOSegments = 64

// Message is one datagram.
type Message struct {
	// Buf holds the datagram. For WriteBatch it is the caller's data; for
	// ReadBatch it points into the Conn's receive buffers and stays valid
	// until the next ReadBatch.
	Buf []byte

	// Addr is the datagram's destination (WriteBatch) or source
	// (ReadBatch). An IPv4 address is always reported as IPv4, also on
	// an IPv6 socket. The zero AddrPort sends on a connected socket.
	// Zones are not supported and ignored.
	Addr netip.AddrPort
}

// Options configures [New]. The zero value asks for everything the kernel
// supports.
type Options struct {
	// BatchSize is the number of datagrams (or GSO groups) per system call.
	// Zero means DefaultBatchSize.
	BatchSize int

	// MaxDatagramSize is the largest datagram received without GRO; larger
	// datagrams are dropped and counted. Zero means DefaultMaxDatagramSize.
	// With GRO on, a batch is read into BatchSize/8 (at least 2) buffers of
	// 64 KiB, each holding one datagram or up to 64 coalesced ones, whatever
	// this says.
	MaxDatagramSize int

	// SocketBufferSize is the send and receive buffer size to ask for
	// (SO_SNDBUF, SO_RCVBUF, and their FORCE variants when privileged).
	// Zero means DefaultSocketBufferSize; negative leaves the socket's
	// buffers alone.
	SocketBufferSize int

	// DisableGSO sends every datagram on its own, without UDP_SEGMENT.
	DisableGSO bool

	// DisableGRO turns UDP_GRO off on the socket, so the kernel never
	// delivers coalesced datagrams.
	DisableGRO bool

	// Logger receives the offloads found at debug level and fallbacks at
	// warning level. Nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.MaxDatagramSize <= 0 {
		o.MaxDatagramSize = DefaultMaxDatagramSize
	}
	if o.MaxDatagramSize > maxUDPPayload {
		o.MaxDatagramSize = maxUDPPayload
	}
	if o.SocketBufferSize == 0 {
		o.SocketBufferSize = DefaultSocketBufferSize
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// maxUDPPayload is the largest UDP payload an IPv6 datagram can carry
// (65535 minus the 8-byte UDP header); IPv4 allows 20 bytes less.
const (
	maxUDPPayload  = 1<<16 - 1 - 8
	maxUDP4Payload = maxUDPPayload - 20
)

// Stats counts what a Conn did. All counters only grow.
type Stats struct {
	Sent        uint64 `json:"sent"`        // datagrams the kernel accepted
	SentGSO     uint64 `json:"sentGSO"`     // GSO groups of two or more datagrams sent
	SendErrors  uint64 `json:"sendErrors"`  // datagrams the kernel refused
	Received    uint64 `json:"received"`    // datagrams returned by ReadBatch
	ReceivedGRO uint64 `json:"receivedGRO"` // coalesced GRO datagrams split by ReadBatch
	Truncated   uint64 `json:"truncated"`   // datagrams dropped for being larger than MaxDatagramSize
	Syscalls    uint64 `json:"syscalls"`    // sendmmsg and recvmmsg calls (or their fallbacks)
}

type stats struct {
	sent, sentGSO, sendErrors, received, receivedGRO, truncated, syscalls atomic.Uint64
}

func (s *stats) snapshot() Stats {
	return Stats{
		Sent:        s.sent.Load(),
		SentGSO:     s.sentGSO.Load(),
		SendErrors:  s.sendErrors.Load(),
		Received:    s.received.Load(),
		ReceivedGRO: s.receivedGRO.Load(),
		Truncated:   s.truncated.Load(),
		Syscalls:    s.syscalls.Load(),
	}
}

// Conn sends and receives UDP datagrams in batches over a *net.UDPConn.
// ReadBatch and WriteBatch may run at the same time, from different
// goroutines; concurrent calls of the same method take turns.
type Conn struct {
	uc    *net.UDPConn
	opts  Options
	local netip.AddrPort
	stats stats
	sys   sysConn
}

// New wraps uc, which the Conn owns from now on: Close closes it. New sets
// the socket's buffer sizes and UDP_GRO as Options says and probes for GSO.
func New(uc *net.UDPConn, opts Options) (*Conn, error) {
	if uc == nil {
		return nil, errors.New("udpbatch: New: nil *net.UDPConn")
	}
	c := &Conn{uc: uc, opts: opts.withDefaults()}
	if a, ok := uc.LocalAddr().(*net.UDPAddr); ok {
		c.local = a.AddrPort()
	}
	if err := c.init(); err != nil {
		return nil, fmt.Errorf("udpbatch: %w", err)
	}
	gso, gro := c.Offloads()
	c.opts.Logger.Debug("udpbatch: socket ready", "local", c.local, "batch", c.opts.BatchSize, "gso", gso, "gro", gro)
	return c, nil
}

// ReadBatch blocks until at least one datagram has arrived, then fills msgs
// with as many as are ready and returns how many it filled. Each
// msgs[i].Buf points into the Conn's buffers and is valid until the next
// ReadBatch. Datagrams left over from a GRO super-datagram that did not fit
// in msgs are returned by the next call. After Close, ReadBatch returns an
// error matching net.ErrClosed.
func (c *Conn) ReadBatch(msgs []Message) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	return c.readBatch(msgs)
}

// WriteBatch sends msgs in order and returns how many the kernel accepted.
// A datagram the kernel refuses (no route, message too long, ...) is
// skipped and counted, the rest are still sent, and the first such error is
// returned together with the count. It blocks while the socket's send
// buffer is full. After Close it returns an error matching net.ErrClosed.
func (c *Conn) WriteBatch(msgs []Message) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	return c.writeBatch(msgs)
}

// Offloads reports whether UDP segmentation (GSO) is used for sending and
// UDP receive coalescing (GRO) is on for receiving. GSO may turn off later,
// after a send fails because of it.
func (c *Conn) Offloads() (gso, gro bool) { return c.offloads() }

// BatchSize returns Options.BatchSize, the number of datagrams a ReadBatch
// fills best.
func (c *Conn) BatchSize() int { return c.opts.BatchSize }

// LocalAddr returns the socket's local address.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// UDPConn returns the wrapped socket, for socket options; reading from or
// writing to it directly while the Conn is in use mixes up batches.
func (c *Conn) UDPConn() *net.UDPConn { return c.uc }

// Stats returns the Conn's counters.
func (c *Conn) Stats() Stats { return c.stats.snapshot() }

// Close closes the socket. Blocked and later ReadBatch and WriteBatch calls
// return an error matching net.ErrClosed. Close may be called more than
// once; later calls return that error too.
func (c *Conn) Close() error { return c.uc.Close() }
