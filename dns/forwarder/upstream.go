package forwarder

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// dnsMessageType is the media type of RFC 8484.
const dnsMessageType = "application/dns-message"

// headerLen is the length of a DNS message header.
const headerLen = 12

// upstream is one compiled Upstream.
type upstream struct {
	cfg      Upstream
	addr     string // ip:port to dial
	dialer   Dialer
	tls      *tls.Config     // TLS and HTTPS
	client   *http.Client    // HTTPS
	tr       *http.Transport // HTTPS
	pool     connPool        // idle TCP and TLS connections
	counters *upstreamCounters
}

func newUpstream(cfg Upstream, d Dialer, roots *x509.CertPool, c *upstreamCounters) *upstream {
	u := &upstream{cfg: cfg, addr: cfg.dialAddr(), dialer: d, counters: c}
	switch cfg.Protocol {
	case TLS:
		name := cfg.ServerName
		if name == "" {
			name = cfg.Addr.Addr().WithZone("").String() // checked against the certificate's IP addresses
		}
		u.tls = &tls.Config{
			ServerName:         name,
			RootCAs:            roots,
			MinVersion:         tls.VersionTLS12,
			NextProtos:         []string{"dot"},
			ClientSessionCache: tls.NewLRUClientSessionCache(4),
		}
	case HTTPS:
		p, _ := url.Parse(cfg.URL) // validated
		u.tls = &tls.Config{
			ServerName:         p.Hostname(),
			RootCAs:            roots,
			MinVersion:         tls.VersionTLS12,
			ClientSessionCache: tls.NewLRUClientSessionCache(4),
		}
		addr := u.addr
		u.tr = &http.Transport{
			Proxy: nil, // never a proxy from the environment
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "tcp", addr)
			},
			TLSClientConfig:     u.tls,
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		}
		u.client = &http.Client{
			Transport: u.tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return errors.New("redirects are not followed")
			},
		}
	}
	return u
}

// close releases the upstream's idle connections. In-flight exchanges
// must be over.
func (u *upstream) close() {
	u.pool.close()
	if u.tr != nil {
		u.tr.CloseIdleConnections()
	}
}

// query sends the query in wire (whose ID it overwrites) and returns the
// checked response and its bytes. A UDP answer with TC set is asked again
// over TCP; when that fails the truncated answer is returned.
func (u *upstream) query(ctx context.Context, wire []byte, q dns.Question) (*dns.Msg, []byte, error) {
	id := dns.Id()
	if u.cfg.Protocol == HTTPS {
		id = 0 // RFC 8484 4.1: cache friendly
	}
	binary.BigEndian.PutUint16(wire, id)
	u.counters.queries.Add(1)
	var (
		m   *dns.Msg
		raw []byte
		err error
	)
	switch u.cfg.Protocol {
	case UDP:
		m, raw, err = u.exchangeUDP(ctx, wire, id, q)
		if err == nil && m.Truncated {
			u.counters.queries.Add(1)
			m2, raw2, err2 := u.exchangeStream(ctx, wire, id, q, false)
			if err2 == nil {
				m, raw = m2, raw2
			} else {
				u.counters.failures.Add(1)
			}
		}
	case TCP:
		m, raw, err = u.exchangeStream(ctx, wire, id, q, false)
	case TLS:
		m, raw, err = u.exchangeStream(ctx, wire, id, q, true)
	case HTTPS:
		m, raw, err = u.exchangeHTTPS(ctx, wire, q)
	default:
		err = fmt.Errorf("unknown protocol %s", u.cfg.Protocol)
	}
	if err != nil {
		u.counters.failures.Add(1)
		return nil, nil, err
	}
	if m.Rcode == dns.RcodeServerFailure || m.Rcode == dns.RcodeRefused {
		u.counters.failures.Add(1)
	} else {
		u.counters.answers.Add(1)
	}
	return m, raw, nil
}

// deadlineConn sets c's deadline from ctx and makes a cancellation of ctx
// unblock c's reads and writes; call the returned function when done.
func deadlineConn(ctx context.Context, c net.Conn) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
}

// udpBufs holds receive buffers for UDP answers.
var udpBufs = sync.Pool{New: func() any { b := make([]byte, dns.MaxMsgSize); return &b }}

// exchangeUDP sends wire over a connected UDP socket and waits for a
// response that matches id and q, skipping any other datagram.
func (u *upstream) exchangeUDP(ctx context.Context, wire []byte, id uint16, q dns.Question) (*dns.Msg, []byte, error) {
	c, err := u.dialer.DialContext(ctx, "udp", u.addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dialing: %w", err)
	}
	defer c.Close()
	defer deadlineConn(ctx, c)()
	if _, err := c.Write(wire); err != nil {
		return nil, nil, ctxErr(ctx, fmt.Errorf("sending: %w", err))
	}
	bp := udpBufs.Get().(*[]byte)
	defer udpBufs.Put(bp)
	buf := *bp
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, nil, ctxErr(ctx, fmt.Errorf("receiving: %w", err))
		}
		raw := buf[:n]
		m, err := checkResponse(raw, id, q)
		if err != nil {
			if m != nil && m.Truncated { // unpacking a cut answer may fail after the header
				return m, nil, nil
			}
			continue // not our answer: keep waiting until the deadline
		}
		return m, bytes.Clone(raw), nil
	}
}

// exchangeStream sends wire over TCP, or TLS, with the two-byte length
// prefix, and reads one response. It reuses an idle connection when
// there is one, and dials afresh when that one turns out closed.
func (u *upstream) exchangeStream(ctx context.Context, wire []byte, id uint16, q dns.Question, useTLS bool) (*dns.Msg, []byte, error) {
	for {
		c := u.pool.get()
		reused := c != nil
		if !reused {
			var err error
			if c, err = u.dialStream(ctx, useTLS); err != nil {
				return nil, nil, err
			}
		}
		m, raw, err := roundTrip(ctx, c, wire, id, q)
		if err == nil {
			u.pool.put(c)
			return m, raw, nil
		}
		c.Close()
		if !reused || ctx.Err() != nil {
			return nil, nil, err
		}
		// The server closed the idle connection meanwhile: dial afresh.
	}
}

// dialStream opens a TCP or TLS connection to the upstream.
func (u *upstream) dialStream(ctx context.Context, useTLS bool) (net.Conn, error) {
	c, err := u.dialer.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		return nil, fmt.Errorf("dialing: %w", err)
	}
	if !useTLS {
		return c, nil
	}
	tc := tls.Client(c, u.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, ctxErr(ctx, fmt.Errorf("TLS handshake: %w", err))
	}
	return tc, nil
}

// roundTrip sends one length-prefixed query on c and reads the answer.
// On success c has no deadline left and may be used again.
func roundTrip(ctx context.Context, c net.Conn, wire []byte, id uint16, q dns.Question) (*dns.Msg, []byte, error) {
	stop := deadlineConn(ctx, c)
	out := make([]byte, 2+len(wire))
	binary.BigEndian.PutUint16(out, uint16(len(wire)))
	copy(out[2:], wire)
	if _, err := c.Write(out); err != nil {
		stop()
		return nil, nil, ctxErr(ctx, fmt.Errorf("sending: %w", err))
	}
	var lb [2]byte
	if _, err := io.ReadFull(c, lb[:]); err != nil {
		stop()
		return nil, nil, ctxErr(ctx, fmt.Errorf("receiving: %w", err))
	}
	raw := make([]byte, binary.BigEndian.Uint16(lb[:]))
	if _, err := io.ReadFull(c, raw); err != nil {
		stop()
		return nil, nil, ctxErr(ctx, fmt.Errorf("receiving: %w", err))
	}
	if !stop() {
		return nil, nil, ctxErr(ctx, errors.New("cancelled")) // the deadline is in the past now
	}
	c.SetDeadline(time.Time{})
	m, err := checkResponse(raw, id, q)
	if err != nil {
		return nil, nil, err
	}
	return m, raw, nil
}

// connPool keeps a few idle TCP or TLS connections to one upstream.
type connPool struct {
	mu     sync.Mutex // guards idle and closed
	idle   []idleConn // oldest first
	closed bool
}

type idleConn struct {
	c     net.Conn
	since time.Time
}

// Pool limits: servers commonly close idle connections after 10 seconds
// or more (RFC 7766 6.2.3 suggests a few seconds to minutes).
const (
	maxIdleConns    = 4
	idleConnTimeout = 5 * time.Second
)

// get returns the most recently used idle connection, or nil.
func (p *connPool) get() net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		ic := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if time.Since(ic.since) < idleConnTimeout {
			return ic.c
		}
		ic.c.Close()
	}
	return nil
}

// put keeps c for reuse, or closes it when the pool is full or closed.
func (p *connPool) put(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) >= maxIdleConns {
		c.Close()
		return
	}
	p.idle = append(p.idle, idleConn{c, time.Now()})
}

// close closes the idle connections, and those put later.
func (p *connPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, ic := range p.idle {
		ic.c.Close()
	}
	p.idle = nil
}

// exchangeHTTPS POSTs wire to the DoH endpoint (RFC 8484 4.1).
func (u *upstream) exchangeHTTPS(ctx context.Context, wire []byte, q dns.Question) (*dns.Msg, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.cfg.URL, bytes.NewReader(bytes.Clone(wire)))
	if err != nil {
		return nil, nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", dnsMessageType)
	req.Header.Set("Accept", dnsMessageType)
	resp, err := u.client.Do(req)
	if err != nil {
		// The URL may hold a credential: keep it out of the error.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, nil, ctxErr(ctx, fmt.Errorf("HTTP request: %w", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, nil, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != dnsMessageType {
		return nil, nil, fmt.Errorf("HTTP response of type %q, want %s", resp.Header.Get("Content-Type"), dnsMessageType)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, dns.MaxMsgSize+1))
	if err != nil {
		return nil, nil, ctxErr(ctx, fmt.Errorf("reading HTTP response: %w", err))
	}
	if len(raw) > dns.MaxMsgSize {
		return nil, nil, errors.New("HTTP response larger than a DNS message")
	}
	m, err := checkResponse(raw, 0, q)
	if err != nil {
		return nil, nil, err
	}
	return m, raw, nil
}

// checkResponse unpacks raw and checks that it answers the query with id
// and question q. When only the header could be read, it returns the
// message (header only) together with the error.
func checkResponse(raw []byte, id uint16, q dns.Question) (*dns.Msg, error) {
	if len(raw) < headerLen {
		return nil, errors.New("response shorter than a DNS header")
	}
	if got := binary.BigEndian.Uint16(raw); got != id {
		return nil, fmt.Errorf("response ID %d, want %d", got, id)
	}
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil {
		if m.Response && m.Id == id {
			return m, fmt.Errorf("malformed response: %w", err)
		}
		return nil, fmt.Errorf("malformed response: %w", err)
	}
	if !m.Response {
		return nil, errors.New("response without the QR bit")
	}
	switch {
	case len(m.Question) == 1:
		a := m.Question[0]
		if a.Qtype != q.Qtype || a.Qclass != q.Qclass || !strings.EqualFold(a.Name, q.Name) {
			return nil, fmt.Errorf("response for another question")
		}
	case len(m.Question) == 0 && (m.Rcode != dns.RcodeSuccess || m.Truncated):
		// Some servers leave the question out of errors and truncated answers.
	default:
		return nil, fmt.Errorf("response with %d questions", len(m.Question))
	}
	return m, nil
}

// ctxErr prefers ctx's error, which says why a connection was cut short.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}
