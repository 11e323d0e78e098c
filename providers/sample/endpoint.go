package sample

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/netext/netext/tun"
	"github.com/netext/netext/udpbatch"
)

// Defaults for zero Config fields.
const (
	DefaultMTU              = 1420
	DefaultHandshakeTimeout = 10 * time.Second
	// handshakeRetry is how long a client waits for an ack before sending
	// its hello again.
	handshakeRetry = time.Second
)

const (
	// udpBatch is the number of datagrams read and written per call.
	udpBatch = 128
	// maxPacket is the largest packet received through the tunnel: it
	// covers a 9000-byte jumbo MTU on the other end.
	maxPacket = udpbatch.DefaultMaxDatagramSize - Overhead
	// writeOffset is where packets start in the buffers handed to the
	// device's Write: room for a virtio-net header, which devices with
	// offloads put in front of each packet.
	writeOffset = 16
	// offloadBufferSize lets a device with offloads coalesce many packets
	// into one buffer on Write.
	offloadBufferSize = 1 << 16
)

// Config configures an Endpoint. Only Key is required.
type Config struct {
	// Key is the pre-shared key; both ends must use the same one.
	Key Key

	// MTU is the largest packet read from the device, which sizes the
	// read buffers (the device's own MTU, if larger, wins). Zero means
	// DefaultMTU.
	MTU int

	// Keepalive, on a client, is how often to send an empty packet while
	// the tunnel is otherwise quiet, so that NAT mappings stay open and
	// the server learns a new address soon after the client moves.
	// Zero sends none. Servers never send keepalives.
	Keepalive time.Duration

	// HandshakeTimeout bounds Connect when ctx has no earlier deadline.
	// Zero means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	// UDP tunes the batched socket; the zero value uses every offload the
	// kernel has. Its Logger defaults to Logger, and its BatchSize and
	// MaxDatagramSize are set by the endpoint.
	UDP udpbatch.Options

	// Logger receives connection events at info level and problems at
	// warning level; per-packet events are only counted (see Stats).
	// Nil discards everything.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Key == (Key{}) {
		return c, errors.New("sample: Config.Key is not set")
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.MTU < 576 || c.MTU > maxPacket {
		return c, fmt.Errorf("sample: Config.MTU %d: must be 576 to %d", c.MTU, maxPacket)
	}
	if c.Keepalive < 0 {
		return c, fmt.Errorf("sample: Config.Keepalive %v: must not be negative", c.Keepalive)
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.UDP.BatchSize = udpBatch
	c.UDP.MaxDatagramSize = maxPacket + Overhead
	if c.UDP.Logger == nil {
		c.UDP.Logger = c.Logger
	}
	return c, nil
}

// An Endpoint is one end of a sample tunnel: it moves packets between a
// tunnel device and a UDP socket, encrypting them on the way out and
// checking and decrypting them on the way in. A client Endpoint comes from
// Connect, a server Endpoint from NewServer.
//
// Its methods are safe for concurrent use.
type Endpoint struct {
	cfg      Config
	log      *slog.Logger
	conn     *udpbatch.Conn
	isClient bool
	hs       handshakeAEADs

	session atomic.Pointer[session]        // nil on a server until a client says hello
	peer    atomic.Pointer[netip.AddrPort] // where packets go; nil with session
	stats   counters

	// lastHello is the newest accepted hello's timestamp (server). It
	// is used by the receiving goroutine only.
	lastHello uint64

	closeOnce sync.Once
	done      chan struct{} // closed by Close or a failure
	errMu     sync.Mutex    // guards err
	err       error         // the failure that closed the endpoint
}

func newEndpoint(pc *net.UDPConn, cfg Config, isClient bool) (*Endpoint, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	conn, err := udpbatch.New(pc, cfg.UDP)
	if err != nil {
		return nil, err
	}
	return &Endpoint{
		cfg:      cfg,
		log:      cfg.Logger,
		conn:     conn,
		isClient: isClient,
		hs:       newHandshakeAEADs(&cfg.Key),
		done:     make(chan struct{}),
	}, nil
}

// NewServer returns the server end of a tunnel on pc, which it owns from
// now on. The server serves one client at a time: the latest one whose
// hello authenticates. Until a client has said hello, packets read from the
// device are dropped. Call Run to start.
func NewServer(pc *net.UDPConn, cfg Config) (*Endpoint, error) {
	return newEndpoint(pc, cfg, false)
}

// Connect says hello to the server at addr over pc, which the Endpoint owns
// from now on (Connect closes it when it fails), and returns once the
// server has answered. It sends the hello again every second, and gives up
// when ctx is done or after Config.HandshakeTimeout, whichever is first.
// Call Run to start moving packets.
func Connect(ctx context.Context, pc *net.UDPConn, addr netip.AddrPort, cfg Config) (*Endpoint, error) {
	e, err := newEndpoint(pc, cfg, true)
	if err != nil {
		pc.Close()
		return nil, err
	}
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	e.peer.Store(&addr)
	if err := e.handshake(ctx, addr); err != nil {
		e.conn.Close()
		return nil, err
	}
	return e, nil
}

func (e *Endpoint) handshake(ctx context.Context, addr netip.AddrPort) error {
	ctx, cancel := context.WithTimeoutCause(ctx, e.cfg.HandshakeTimeout,
		fmt.Errorf("no answer from %v within %v (is the server running, with the same key?)", addr, e.cfg.HandshakeTimeout))
	defer cancel()
	uc := e.conn.UDPConn()
	stop := context.AfterFunc(ctx, func() { uc.SetReadDeadline(time.Now()) })
	defer func() {
		stop()
		uc.SetReadDeadline(time.Time{})
	}()

	var h hello
	rand.Read(h.clientRandom[:])
	h.timestamp = uint64(time.Now().UnixNano())
	msg := []udpbatch.Message{{Buf: e.hs.sealHello(h), Addr: addr}}
	in := make([]udpbatch.Message, 16)
	for attempt := 1; ; attempt++ {
		if _, err := e.conn.WriteBatch(msg); err != nil {
			// A missing route may come back; keep trying until the deadline.
			e.log.Warn("sample: sending hello failed", "server", addr, "err", err)
		}
		e.log.Debug("sample: hello sent", "server", addr, "attempt", attempt)
		retry := time.Now().Add(handshakeRetry)
		if err := uc.SetReadDeadline(retry); err != nil {
			return fmt.Errorf("sample: handshake: %w", err)
		}
		for time.Now().Before(retry) {
			if ctx.Err() != nil {
				return fmt.Errorf("sample: handshake with %v: %w", addr, context.Cause(ctx))
			}
			n, err := e.conn.ReadBatch(in)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil && !isTransient(err) {
				return fmt.Errorf("sample: handshake with %v: %w", addr, err)
			}
			for _, m := range in[:n] {
				a, ok := e.hs.openAck(m.Buf)
				if !ok || a.clientRandom != h.clientRandom {
					e.stats.droppedHandshake.Add(1)
					continue
				}
				e.session.Store(newSession(&e.cfg.Key, a, true))
				e.stats.handshakes.Add(1)
				e.log.Info("sample: connected", "server", addr, "local", e.conn.LocalAddr())
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("sample: handshake with %v: %w", addr, context.Cause(ctx))
		}
	}
}

// Run moves packets between dev and the network until the endpoint is
// closed, dev is closed, or moving fails; it returns the failure, or nil
// after Close or when dev was closed. A failure closes the endpoint.
//
// Run never closes dev. It returns without waiting for a dev.Read that is
// still blocked; the goroutine doing it ends when that Read returns, which
// closing dev makes it do. Run may be called once.
func (e *Endpoint) Run(dev tun.Device) error {
	go func() { e.fail(e.deviceToNet(dev)) }()
	var keepalives sync.WaitGroup
	if e.isClient && e.cfg.Keepalive > 0 {
		keepalives.Go(e.keepalives)
	}
	e.fail(e.netToDevice(dev))
	keepalives.Wait()
	e.errMu.Lock()
	defer e.errMu.Unlock()
	return e.err
}

// Close closes the endpoint: Run returns, and the socket is closed.
// Close may be called more than once.
func (e *Endpoint) Close() error {
	e.fail(nil)
	return nil
}

// Done is closed when the endpoint has been closed, by Close or by a
// failure that Run reports.
func (e *Endpoint) Done() <-chan struct{} { return e.done }

// fail closes the endpoint, recording err (unless it only says that
// something was closed) as the reason when it is the first.
func (e *Endpoint) fail(err error) {
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrClosed) {
		e.errMu.Lock()
		select {
		case <-e.done:
		default:
			if e.err == nil {
				e.err = err
			}
		}
		e.errMu.Unlock()
	}
	e.closeOnce.Do(func() {
		e.errMu.Lock()
		close(e.done)
		e.errMu.Unlock()
		e.conn.Close()
	})
}

// Peer returns the address packets are sent to: the server, or the
// client's latest address on a server. It is invalid on a server that has
// no client yet.
func (e *Endpoint) Peer() netip.AddrPort {
	if p := e.peer.Load(); p != nil {
		return *p
	}
	return netip.AddrPort{}
}

// LocalAddr returns the address of the endpoint's socket.
func (e *Endpoint) LocalAddr() netip.AddrPort { return e.conn.LocalAddr() }

// SendKeepalive sends an empty packet to the peer now, for example after
// the client's network changed, so the server learns the new address.
func (e *Endpoint) SendKeepalive() error {
	s, peer := e.session.Load(), e.peer.Load()
	if s == nil || peer == nil {
		return errors.New("sample: no session yet")
	}
	var sl sealer
	buf := make([]byte, Overhead)
	msg := []udpbatch.Message{{Buf: sl.seal(s, s.sendCounter.Add(1)-1, buf, 0), Addr: *peer}}
	if _, err := e.conn.WriteBatch(msg); err != nil {
		return fmt.Errorf("sample: sending keepalive: %w", err)
	}
	e.stats.keepalivesSent.Add(1)
	return nil
}

// keepalives sends a keepalive whenever nothing was sent for a whole
// interval.
func (e *Endpoint) keepalives() {
	t := time.NewTicker(e.cfg.Keepalive)
	defer t.Stop()
	last := e.stats.txPackets.Load() + e.stats.keepalivesSent.Load()
	for {
		select {
		case <-e.done:
			return
		case <-t.C:
		}
		if now := e.stats.txPackets.Load() + e.stats.keepalivesSent.Load(); now != last {
			last = now
			continue
		}
		if err := e.SendKeepalive(); err != nil {
			e.log.Debug("sample: keepalive", "err", err)
		}
		last = e.stats.txPackets.Load() + e.stats.keepalivesSent.Load()
	}
}

// deviceToNet reads packets from dev, seals them and sends them to the
// peer, a batch at a time, reusing its buffers.
func (e *Endpoint) deviceToNet(dev tun.Device) error {
	batch := max(dev.BatchSize(), 1)
	mtu := e.cfg.MTU
	if m, err := dev.MTU(); err == nil && m > mtu {
		mtu = min(m, maxPacket) // what the peer can receive
	}
	size := HeaderLen + mtu + TagLen
	slab := make([]byte, batch*size)
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = slab[i*size : (i+1)*size : (i+1)*size]
	}
	sizes := make([]int, batch)
	msgs := make([]udpbatch.Message, batch)
	var sl sealer
	sendErrs := rateLimited{log: e.log, msg: "sample: sending to peer failed"}
	for {
		n, readErr := dev.Read(bufs, sizes, HeaderLen)
		s, peer := e.session.Load(), e.peer.Load()
		if n > 0 && (s == nil || peer == nil) {
			e.stats.droppedNoSession.Add(uint64(n))
			n = 0
		}
		if n > 0 {
			counter := s.sendCounter.Add(uint64(n)) - uint64(n)
			k := 0
			var bytes uint64
			for i := range n {
				if sizes[i] == 0 || counter+uint64(i) >= rejectAfter {
					continue
				}
				msgs[k] = udpbatch.Message{Buf: sl.seal(s, counter+uint64(i), bufs[i], sizes[i]), Addr: *peer}
				bytes += uint64(sizes[i])
				k++
			}
			// Counted before sending, so a peer that has the packet
			// sees it counted; refused datagrams show in Stats.UDP.
			e.stats.txPackets.Add(uint64(k))
			e.stats.txBytes.Add(bytes)
			_, err := e.conn.WriteBatch(msgs[:k])
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			if err != nil {
				sendErrs.report(err, "peer", *peer)
			}
		}
		switch {
		case readErr == nil:
		case errors.Is(readErr, wgtun.ErrTooManySegments), errors.Is(readErr, io.ErrShortBuffer):
			e.stats.deviceReadErrors.Add(1)
		case errors.Is(readErr, os.ErrClosed), errors.Is(readErr, net.ErrClosed):
			return nil
		default:
			select {
			case <-e.done:
				return nil
			default:
			}
			return fmt.Errorf("sample: reading from the tunnel device: %w", readErr)
		}
	}
}

// netToDevice receives datagrams, handles handshakes, opens data messages
// and writes the packets to dev, a batch at a time, reusing its buffers.
func (e *Endpoint) netToDevice(dev tun.Device) error {
	size := writeOffset + maxPacket + TagLen
	if dev.Offloads()&tun.OffloadTCP != 0 {
		size = writeOffset + offloadBufferSize
	}
	store := make([][]byte, udpBatch)
	for i := range store {
		store[i] = make([]byte, size)
	}
	out := make([][]byte, 0, udpBatch)
	msgs := make([]udpbatch.Message, udpBatch)
	var op opener
	writeErrs := rateLimited{log: e.log, msg: "sample: writing to the tunnel device failed"}
	for {
		n, err := e.conn.ReadBatch(msgs)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			if isTransient(err) {
				e.stats.netReadErrors.Add(1)
				continue
			}
			return fmt.Errorf("sample: receiving: %w", err)
		}
		out = out[:0]
		var bytes uint64
		for _, m := range msgs[:n] {
			if len(m.Buf) == 0 {
				e.stats.droppedMalformed.Add(1)
				continue
			}
			switch m.Buf[0] {
			case typeData:
			case typeHello:
				if !e.isClient {
					e.handleHello(m)
					continue
				}
				fallthrough
			case typeAck: // a late or repeated ack on a client
				e.stats.droppedHandshake.Add(1)
				continue
			default:
				e.stats.droppedMalformed.Add(1)
				continue
			}
			s := e.session.Load()
			if s == nil {
				e.stats.droppedNoSession.Add(1)
				continue
			}
			buf := store[len(out)]
			if len(m.Buf)-Overhead > len(buf)-writeOffset {
				// Larger than any packet the peer may send: with GRO,
				// the socket's buffers let such datagrams through.
				e.stats.droppedMalformed.Add(1)
				continue
			}
			pt, err := op.open(s, buf[writeOffset:writeOffset], m.Buf)
			switch err {
			case nil:
			case errAuth:
				e.stats.droppedAuth.Add(1)
				continue
			case errReplay:
				e.stats.droppedReplay.Add(1)
				continue
			default:
				e.stats.droppedMalformed.Add(1)
				continue
			}
			if !e.isClient {
				e.follow(m.Addr)
			}
			if len(pt) == 0 {
				e.stats.keepalivesReceived.Add(1)
				continue
			}
			bytes += uint64(len(pt))
			out = append(out, buf[:writeOffset+len(pt)])
		}
		if len(out) == 0 {
			continue
		}
		e.stats.rxPackets.Add(uint64(len(out)))
		e.stats.rxBytes.Add(bytes)
		if _, err := dev.Write(out, writeOffset); err != nil {
			if errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			e.stats.deviceWriteErrors.Add(1)
			writeErrs.report(err)
		}
	}
}

// handleHello answers a client's hello (server only, receiving goroutine).
// A hello from the current session's client is answered with the same ack,
// so that a client whose ack was lost can try again. Any other hello starts
// a new session if its timestamp is newer than the last accepted one; an
// older one is a replay and is dropped.
func (e *Endpoint) handleHello(m udpbatch.Message) {
	h, ok := e.hs.openHello(m.Buf)
	if !ok {
		e.stats.droppedHandshake.Add(1)
		return
	}
	s := e.session.Load()
	if s == nil || s.clientRandom != h.clientRandom {
		if h.timestamp <= e.lastHello {
			e.stats.droppedHandshake.Add(1)
			e.log.Debug("sample: stale hello dropped", "from", m.Addr)
			return
		}
		e.lastHello = h.timestamp
		a := ack{clientRandom: h.clientRandom}
		rand.Read(a.serverRandom[:])
		s = newSession(&e.cfg.Key, a, false)
		s.ack = e.hs.sealAck(a)
		addr := m.Addr
		e.peer.Store(&addr)
		e.session.Store(s)
		e.stats.handshakes.Add(1)
		e.log.Info("sample: client connected", "client", addr)
	}
	if _, err := e.conn.WriteBatch([]udpbatch.Message{{Buf: s.ack, Addr: m.Addr}}); err != nil {
		e.log.Warn("sample: sending ack failed", "client", m.Addr, "err", err)
	}
}

// follow moves the server's peer to addr, the source of a packet that
// authenticated.
func (e *Endpoint) follow(addr netip.AddrPort) {
	if p := e.peer.Load(); p != nil && *p == addr {
		return
	}
	old := e.Peer()
	e.peer.Store(&addr)
	e.stats.roams.Add(1)
	e.log.Info("sample: client moved", "from", old, "to", addr)
}

// isTransient reports whether a receive error leaves the socket usable:
// ICMP errors reported on the socket and the like.
func isTransient(err error) bool {
	var se *os.SyscallError
	return errors.As(err, &se)
}

// rateLimited logs a recurring error at most every 10 seconds, with the
// number of occurrences since the last line.
type rateLimited struct {
	log   *slog.Logger
	msg   string
	last  time.Time
	count int
}

func (r *rateLimited) report(err error, args ...any) {
	r.count++
	if now := time.Now(); now.Sub(r.last) >= 10*time.Second {
		r.log.Warn(r.msg, append(args, "err", err, "count", r.count)...)
		r.last, r.count = now, 0
	}
}
